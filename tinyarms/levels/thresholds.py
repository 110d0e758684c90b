"""The P(yes) at which a scored claim becomes a finding, per rule and model: the thresholds
shipped for the built-in models, those ``tinyarms eval --calibrate`` fitted on this machine, and
the config's ``models.thresholds``, each overriding the one before.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_THRESHOLD = 0.5  # P(yes) for a finding where no threshold was fitted for the rule and model
# P(yes) thresholds fitted on the built-in corpus's train split (`tinyarms eval --calibrate`, the
# F1-best), per rule and model; docs/evaluation.md, "How often is it right", has what they are worth on test.
DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "simple-dry": {"qwen2.5-coder:0.5b": 0.412, "qwen2.5-coder:1.5b": 0.824},
    "design-tokens": {"qwen2.5-coder:0.5b": 0.32, "qwen2.5-coder:1.5b": 0.617},
}


def threshold(thresholds: dict[str, float] | None, rule: str) -> float:
    """The P(yes) a claim of ``rule`` needs ("*": every rule's, as eval's every-candidate run sets)."""
    table = thresholds or {}
    return table.get(rule, table.get("*", DEFAULT_THRESHOLD))


def thresholds_for(config: Any, model: str) -> dict[str, float] | None:
    """Per rule, the P(yes) at which a scored claim becomes a finding for ``model``: the config's
    ``models.thresholds``, else the ones shipped for the built-in models; None when verdicts are
    not scored (``models.verdict: answer``)."""
    if getattr(config, "verdict", "probability") != "probability":
        return None
    out: dict[str, float] = {}
    for table in (DEFAULT_THRESHOLDS, calibrated(), getattr(config, "thresholds", None) or {}):
        for rule, by_model in table.items():
            if model in by_model:
                out[rule] = float(by_model[model])
    return out


CALIBRATED = "thresholds.json"  # in the state directory: what `tinyarms eval --calibrate` fitted


def calibrated() -> dict[str, dict[str, float]]:
    """The thresholds `tinyarms eval --calibrate` fitted on this machine ({} when none were)."""
    from tinyarms.paths import state_dir

    try:
        data = json.loads((state_dir(create=False) / CALIBRATED).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
