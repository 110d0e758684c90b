"""Inside the worker: one llama.cpp model, loaded once, asked one question at a time.

This is the only module of tinyarms that imports ``llama_cpp``, and only the worker process
imports it. Each question has a deadline the engine keeps by itself: a stopping criterion ends
generation at the deadline, and an abort callback ends prompt evaluation (installed only while
the prompt is read: llama.cpp calls it for every graph node, which costs too much per generated
token). The parent gives up a moment after the deadline and kills a worker that did not stop.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinyarms.models.base import BAD_ANSWER, MODEL_MISSING, NOT_INSTALLED, ModelUnavailable, timed_out

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage

INSTALL_HINT = "pip install 'tinyarms[embedded]'"


def _messages(system: str, prompt: str) -> list[ChatCompletionRequestMessage]:
    return [{"role": "system", "content": system}, {"role": "user", "content": prompt}]


class Deadline:
    """When a question must end; ``cancelled`` is set by the reader thread on a ``cancel``."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.cancelled = False
        self.hit = False  # generation was cut short by it

    def passed(self) -> bool:
        return self.cancelled or time.monotonic() >= self.at


class Engine:
    """The model at ``path``, loaded by the constructor (which raises ``ModelUnavailable``)."""

    def __init__(self, path: Path, name: str, n_ctx: int, threads: int) -> None:
        try:
            import llama_cpp
            from llama_cpp import llama_chat_format
        except ImportError as exc:
            raise ModelUnavailable(NOT_INSTALLED, f"llama-cpp-python cannot be imported: {exc}", INSTALL_HINT) from None
        self.name = name
        self.version = getattr(llama_cpp, "__version__", "?")
        started = time.monotonic()
        try:
            llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads,
                                  n_threads_batch=threads, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelUnavailable(
                MODEL_MISSING, f"llama.cpp could not load {path}: {exc}",
                f"tinyarms models fetch {name}" if ":" in name else "check that the file is a GGUF model",
            ) from None
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            llm.close()
            raise ModelUnavailable(
                MODEL_MISSING, f"{path} has no chat template: tinyarms needs an instruct model that carries one",
                "use one of the models `tinyarms models fetch` knows",
            )
        self.formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template, eos_token=_token_text(llm, llm.token_eos()),
            bos_token=_token_text(llm, llm.token_bos()), stop_token_ids=[llm.token_eos()],
        )
        self.llm = llm
        self.load_seconds = time.monotonic() - started

    @staticmethod
    def system_info() -> str:
        import llama_cpp

        return bytes(llama_cpp.llama_print_system_info()).decode("utf-8", "replace").strip()

    def complete(self, system: str, prompt: str, schema: dict[str, Any], max_tokens: int,
                 deadline: Deadline) -> dict[str, Any]:
        """What ``create_chat_completion(response_format=json_object+schema)`` does, plus deadlines.

        llama-cpp-python 0.3.36's ``create_chat_completion`` takes no stopping criteria, so the
        model's chat template is applied here (as llama-cpp-python applies it) and the prompt goes
        to ``create_completion`` with the JSON-schema grammar and a deadline criterion.
        """
        import llama_cpp
        from llama_cpp import llama_grammar

        llm = self.llm
        ctx = llm._ctx.ctx  # no public setter for the abort callback
        log = logging.getLogger("llama-cpp-python")
        log_level = log.level

        def should_abort(_data: Any) -> bool:
            if not deadline.passed():
                return False
            log.setLevel(logging.CRITICAL)  # llama.cpp logs the abort as an error: it is our doing
            return True

        abort = llama_cpp.ggml_abort_callback(should_abort)  # kept referenced while llama.cpp may call it

        reading = [True]
        timings: dict[str, Any] = {}
        started = time.monotonic()

        def stop(_tokens: Any, _logits: Any) -> bool:
            if reading[0]:  # the first token is out: the prompt is read, stop paying for the callback
                reading[0] = False
                timings["first_token_seconds"] = time.monotonic() - started
                llama_cpp.llama_set_abort_callback(ctx, llama_cpp.ggml_abort_callback(), None)
            if deadline.passed():
                deadline.hit = True
                return True
            return False

        chat = self.formatter(messages=_messages(system, prompt))
        tokens = llm.tokenize(chat.prompt.encode("utf-8"), add_bos=not chat.added_special, special=True)
        try:
            grammar = llama_grammar.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        except Exception:  # noqa: BLE001 - a schema the converter cannot take still gets JSON
            grammar = llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
        llama_cpp.llama_set_abort_callback(ctx, abort, None)
        llama_cpp.llama_perf_context_reset(ctx)
        try:
            result = llm.create_completion(
                prompt=tokens, temperature=0.0, max_tokens=max_tokens, stop=chat.stop, grammar=grammar,
                repeat_penalty=1.0,
                stopping_criteria=llama_cpp.StoppingCriteriaList([stop, *(chat.stopping_criteria or [])]),
            )
        except RuntimeError as exc:
            if deadline.passed():  # llama_decode returned 2: aborted while reading the prompt
                raise timed_out(self.name, "reading the prompt") from None
            raise ModelUnavailable(BAD_ANSWER, f"llama.cpp failed: {exc}") from None
        except ValueError as exc:  # e.g. the prompt does not fit the context
            raise ModelUnavailable(BAD_ANSWER, f"llama.cpp refused the question: {exc}",
                                   "raise models.embedded.n_ctx, or ask about fewer lines") from None
        finally:
            llama_cpp.llama_set_abort_callback(ctx, llama_cpp.ggml_abort_callback(), None)
            log.setLevel(log_level)
        if deadline.hit:
            raise timed_out(self.name, "generating the answer")
        assert isinstance(result, dict)  # not streamed: one response, not an iterator of chunks
        # llama.cpp's own counters: the prompt tokens it evaluated (a prefix kept from the last
        # question is not) and the tokens it generated after the first, with their times.
        perf = llama_cpp.llama_perf_context(ctx)
        usage: Mapping[str, object] = result.get("usage") or {}
        return {
            "text": result["choices"][0]["text"] or "", "seconds": time.monotonic() - started,
            "prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens"),
            "prompt_eval_tokens": perf.n_p_eval, "prompt_eval_seconds": perf.t_p_eval_ms / 1000,
            "eval_tokens": perf.n_eval, "eval_seconds": perf.t_eval_ms / 1000, **timings,
        }

    def score(self, system: str, prompt: str, prefix: str, choices: list[str], deadline: Deadline) -> dict[str, Any]:
        """The log probabilities of each choice's first token right after ``prefix`` in the
        answer (``{"answer": "`` then ``yes`` or ``no``): one forward pass, no token generated.
        The prompt's prefix kept from the last question is not read again."""
        import llama_cpp
        import numpy as np

        llm = self.llm
        ctx = llm._ctx.ctx

        def should_abort(_data: Any) -> bool:
            return deadline.passed()

        abort = llama_cpp.ggml_abort_callback(should_abort)

        chat = self.formatter(messages=_messages(system, prompt))
        tokens = llm.tokenize((chat.prompt + prefix).encode("utf-8"), add_bos=not chat.added_special, special=True)
        kept = 0
        for old, new in zip(llm.input_ids[: llm.n_tokens], tokens[:-1], strict=False):
            if old != new:
                break
            kept += 1
        llm.n_tokens = kept  # eval() drops the cache past it and reads the rest
        started = time.monotonic()
        llama_cpp.llama_set_abort_callback(ctx, abort, None)
        try:
            # The last token alone, always: logits from a one-token batch are the same whether
            # the rest was read now or kept from the last question (a batch's differ slightly).
            if tokens[kept:-1]:
                llm.eval(tokens[kept:-1])
            llm.eval(tokens[-1:])
        except RuntimeError:
            llm.n_tokens = 0  # half-read: nothing of it can be reused
            if deadline.passed():
                raise timed_out(self.name, "reading the prompt") from None
            raise ModelUnavailable(BAD_ANSWER, "llama.cpp failed to read the prompt") from None
        finally:
            llama_cpp.llama_set_abort_callback(ctx, llama_cpp.ggml_abort_callback(), None)
        raw = llama_cpp.llama_get_logits_ith(ctx, -1)
        logits = np.ctypeslib.as_array(raw, shape=(llm.n_vocab(),)).astype(np.float64)
        top = float(logits.max())
        log_total = top + float(np.log(np.exp(logits - top).sum()))
        logprobs = {}
        for choice in choices:
            first = llm.tokenize(choice.encode("utf-8"), add_bos=False, special=False)[0]
            logprobs[choice] = float(logits[first]) - log_total
        return {"logprobs": logprobs, "seconds": time.monotonic() - started, "prompt_eval_tokens": len(tokens) - kept}

    def close(self) -> None:
        self.llm.close()


def _token_text(llm: Any, token: int) -> str:
    return llm.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""
