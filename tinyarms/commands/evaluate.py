"""``tinyarms eval [CORPUS]``: precision and recall of every rule on a labelled corpus.

Without CORPUS the built-in corpus (real open-source files, ``eval/corpus`` in the repository)
is used. Runs in this process, through the same router as ``lint``, with the configured model
backend and no time budget. Exit 0 whatever the figures; 2 for a usage or corpus error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Only the standard library here: every command's parser is built at start-up.
    parser.add_argument("corpus", nargs="?", type=Path, metavar="CORPUS",
                        help="a folder with labels.yaml, or that file (default: the built-in corpus)")
    parser.add_argument("--corpus-cache", type=Path, metavar="DIR",
                        help="where files fetched from registries are kept and reused (default: the state directory)")
    parser.add_argument("--split", choices=("all", "train", "test"),
                        help="evaluate a deterministic part of the corpus: test is the held-out 30%% "
                             "(default: all; with --calibrate, train)")
    parser.add_argument("--level", type=_levels, metavar="LEVELS", help="only rules of these levels, e.g. 0 or 2,3")
    parser.add_argument("--skill", action="append", metavar="NAME",
                        help="skill to evaluate (repeatable; default: the built-in fast and deep skills)")
    parser.add_argument("--select", type=_ids, metavar="IDS", help="only these rules (comma-separated)")
    parser.add_argument("--model", metavar="NAME", help="model for every model level (e.g. qwen2.5-coder:1.5b)")
    parser.add_argument("--backend", choices=("auto", "ollama", "embedded", "openai", "none"),
                        help="model backend (default: models.backend)")
    confirm = parser.add_mutually_exclusive_group()
    confirm.add_argument("--confirm", dest="confirm", action="store_true", default=True,
                         help="ask the second yes/no question about each model finding and report the figures "
                              "with and without it (the default)")
    confirm.add_argument("--no-confirm", dest="confirm", action="store_false",
                         help="only the first question, as models.confirm: false does")
    parser.add_argument("--question", choices=("auto", "report", "yes-no"),
                        help="how candidates with a claim are asked (default: models.question)")
    parser.add_argument("--max-questions", type=int, metavar="N", help="model questions per file and rule")
    parser.add_argument("--feedback", action="store_true",
                        help="measure what feedback is worth: the model rules' false positives on the test split "
                             "before and after reporting those of the train split (in a feedback file of its own)")
    parser.add_argument("--counter-examples-only", action="store_true",
                        help="with --feedback: teach no kinds of claim, so only the prompts' counter-examples can help")
    parser.add_argument("--calibrate", action="store_true",
                        help="fit each scored model rule's P(yes) threshold on the split (default: train) and keep "
                             "it for this model (thresholds.json in the state directory; models.thresholds overrides)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the report as Markdown tables")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")


def _ids(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _levels(value: str) -> list[int]:
    from tinyarms.skills import DEEP_LEVEL, FAST_LEVEL

    try:
        levels = [int(part) for part in _ids(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: levels are numbers, e.g. 0 or 2,3") from None
    if not levels or any(level not in (0, 1, FAST_LEVEL, DEEP_LEVEL) for level in levels):
        raise argparse.ArgumentTypeError(f"{value!r}: levels are 0, 2 and 3")
    return levels


def run(args: argparse.Namespace) -> int:
    from tinyarms.quality import evaluation, feedback_effect, labels, results

    corpus = args.corpus or labels.builtin_corpus()
    if corpus.is_file() and corpus.name == labels.LABELS:
        corpus = corpus.parent
    if not corpus.is_dir():
        print(f"tinyarms: error: {corpus}: no such directory", file=sys.stderr)
        return 2
    options = evaluation.EvalOptions(
        split=args.split or ("train" if args.calibrate else "all"), skills=args.skill, levels=args.level,
        select=args.select, model=args.model,
        backend=args.backend, confirm=args.confirm, question=args.question, use_cache=not args.no_cache,
        max_candidates=args.max_questions, settle=not args.counter_examples_only, corpus_cache=args.corpus_cache,
    )
    if args.feedback:
        if args.split not in (None, "all"):
            print("tinyarms: error: --feedback uses both splits (it teaches on train, measures on test); "
                  "leave out --split", file=sys.stderr)
            return 2
        learned = feedback_effect.run_feedback(corpus, options)
        return _emit(args, feedback_effect.feedback_markdown(learned), learned.to_dict())
    report = evaluation.run(corpus, options)
    if args.calibrate:
        fitted = evaluation.calibrate(report)
        if not fitted:
            print("tinyarms: error: --calibrate: no model rule was scored (the backend gives no log probabilities, "
                  "or models.verdict is answer)", file=sys.stderr)
            return 2
        for rule, by_model in sorted(fitted.items()):
            for model, threshold in by_model.items():
                print(f"calibrated {rule} for {model}: P(yes) >= {threshold:.4f}", file=sys.stderr)
    return _emit(args, results.markdown(report), report.to_dict())


def _emit(args: argparse.Namespace, text: str, data: dict[str, Any]) -> int:
    if args.markdown:
        try:
            args.markdown.write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"tinyarms: error: cannot write {args.markdown}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    sys.stdout.write(json.dumps(data, indent=2) + "\n" if args.json else text)
    return 0
