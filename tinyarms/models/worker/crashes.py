"""How a model worker failed, and what to do about it: the signal or status it ended with, the
fix that fits (a rebuild for this CPU, more memory, a damaged file), and the mark a passing
``tinyarms doctor`` leaves, which mends a backend the pool marked broken.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from typing import Any

from tinyarms.models.worker.process import Spec, log_path
from tinyarms.paths import state_dir

DOCTOR_MARK = "doctor-passed"  # in the state directory: touched by a passing `tinyarms doctor`


def death(code: int) -> str:
    """'SIGILL (illegal instruction)' or 'status 3', for a return code of ``Popen``."""
    if code < 0:
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return f"signal {-code}"
        shown = f"{sig.name} ({signal.strsignal(sig) or sig.name})"
        return shown.replace("(Illegal instruction)", "(illegal instruction)")
    return f"status {code}"


def crash_hint(code: int, spec: Spec, system_info: str = "") -> str:
    """What to do about a worker that ended with ``code``; ``system_info`` is its llama.cpp build's."""
    from tinyarms.models import buildflags

    rebuild = f"{buildflags.reinstall_command()}, then `tinyarms doctor`"
    if code == -signal.SIGILL:
        return ("this llama.cpp build uses CPU instructions this machine does not run; "
                f"reinstall it for this CPU: {rebuild}")
    if "AMX" in system_info and code in (-signal.SIGSEGV, -signal.SIGBUS):
        # seen here: a -march=native build's AMX kernels die on VMs that advertise AMX
        return ("this llama.cpp build uses AMX (it was built with -march=native), which crashes on many VMs; "
                f"reinstall it without: {rebuild}")
    if code == -signal.SIGKILL:
        return ("killed from outside, most likely by the kernel's OOM killer (`journalctl -k | grep -i oom`): "
                "free memory, lower models.embedded.n_ctx, or use a smaller model (`tinyarms models recommend`)")
    if code in (-signal.SIGSEGV, -signal.SIGBUS, -signal.SIGABRT, -signal.SIGFPE):
        fetch = f"`tinyarms models fetch {spec.name}` checks the file" if ":" in spec.name else "check the GGUF file"
        return f"llama.cpp crashed: {fetch}; `tinyarms doctor` tells whether the build works"
    return f"see {log_path()}; `tinyarms doctor` tells whether the embedded backend works"


def doctor_passed() -> float:
    """When ``tinyarms doctor`` last passed on this machine (epoch seconds), or 0."""
    try:
        return (state_dir(create=False) / DOCTOR_MARK).stat().st_mtime
    except OSError:
        return 0.0


@dataclass
class Crash:
    """One failure of a worker: what it died of, and when."""

    model: str
    pid: int
    cause: str  # "SIGILL (illegal instruction)", "status 3", "a malformed message", "no answer ..."
    hint: str
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "pid": self.pid, "cause": self.cause, "hint": self.hint, "at": self.at}
