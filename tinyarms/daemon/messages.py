"""Socket requests, validated. The framing is ``tinyarms.protocol``'s; these are the fields, and
how a lint request becomes the ``LintJob`` the daemon runs."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from tinyarms import lintjob, protocol

MIN_BUDGET = 0.001  # seconds: what a request whose deadline has passed still gets
_CLOCK_SANITY = 3600.0  # seconds: a client deadline further away than this is on another clock


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1]
    id: str | int | None = None
    client_version: str | None = None


class Ping(_Request):
    op: Literal["ping"]


class Status(_Request):
    op: Literal["status"]


class Reload(_Request):
    op: Literal["reload"]


class Shutdown(_Request):
    op: Literal["shutdown"]


class Subscribe(_Request):
    """Keep this connection open for events: after the reply, the daemon sends one line per
    event (``{"v": 1, "event": "answered", "paths": [...]}`` when background model questions
    about those root-relative paths were answered) until the client hangs up."""

    op: Literal["subscribe"]


class FileContent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=4096, description="relative to root, '/'-separated")
    content_b64: str | None = Field(None, description="the bytes to lint; null when the client left them out")
    size: int | None = Field(None, ge=0, description="the file's size when the content was left out")
    changed: list[tuple[int, int]] | None = Field(
        None, max_length=100_000, description="line ranges the staged change touched; null: all lines")


class Lint(_Request):
    op: Literal["lint"]
    cwd: str = Field(min_length=1)
    root: str | None = None
    files: list[FileContent] | None = Field(None, max_length=100_000, description="contents sent by the client")
    paths: list[str] = Field([], max_length=100_000, description="or: paths for the daemon to read")
    staged: bool = False
    skill: list[str] | None = None
    select: list[str] | None = None
    ignore: list[str] | None = None
    fail_on: Literal["error", "warning", "never"] | None = None
    budget: float | None = Field(None, gt=0, le=3600)
    deadline: float | None = Field(
        None, allow_inf_nan=False, description="the client's time.monotonic() by which it needs the reply "
        "(one clock for every process of a machine); the budget is cut to fit")
    baseline: str | None = None
    report_unused: bool = False
    no_cache: bool = False
    format: Literal["text", "json", "sarif", "github"] | None = None
    color: bool = False
    env: dict[str, str] = Field({}, description="the client's TINYARMS_* environment variables")


class Scan(_Request):
    """Start a deep scan in the daemon (or join the identical one already running); the reply
    names it for ``scan-status``. Progress is polled, not streamed: one request, one reply."""

    op: Literal["scan"]
    cwd: str = Field(min_length=1)
    paths: list[str] = Field([], max_length=100_000, description="absolute, or relative to cwd; []: the repository")
    skill: list[str] | None = None
    select: list[str] | None = None
    ignore: list[str] | None = None
    restart: bool = False
    max_questions: int = Field(64, ge=1, le=100_000, description="model questions per file and rule")
    no_cache: bool = False
    env: dict[str, str] = Field({}, description="the client's TINYARMS_* environment variables")


class ScanStatus(_Request):
    op: Literal["scan-status"]
    scan: str = Field(min_length=1, max_length=64, description="the id the scan op replied with")


Request = Annotated[Ping | Status | Reload | Shutdown | Subscribe | Lint | Scan | ScanStatus, Field(discriminator="op")]
REQUEST = TypeAdapter(Request)
OPS = ("ping", "lint", "status", "reload", "shutdown", "subscribe", "scan", "scan-status")


def lint_job(request: Lint, received: float | None) -> lintjob.LintJob:
    """The lint ``request`` asks for, received at ``received`` (``time.monotonic()``): the files
    it sent decoded, its budget cut to its deadline."""
    return lintjob.LintJob(
        paths=request.paths, staged=request.staged, root=Path(request.root) if request.root else None,
        sent=[_sent(f.path, f.content_b64, f.size, f.changed) for f in request.files]
        if request.files is not None else None,
        skill=request.skill, select=request.select, ignore=request.ignore, fail_on=request.fail_on,
        budget=_budget(request, received), baseline=Path(request.baseline) if request.baseline else None,
        report_unused=request.report_unused, no_cache=request.no_cache, env=request.env, received=received,
    )


def _sent(path: str, content_b64: str | None, size: int | None,
          changed: list[tuple[int, int]] | None) -> lintjob.SentFile:
    try:
        raw = base64.b64decode(content_b64, validate=True) if content_b64 is not None else None
    except ValueError:
        raise protocol.ProtocolError(protocol.BAD_REQUEST, f"files: {path}: content_b64 is not valid base64") from None
    return lintjob.SentFile(path, raw, size, tuple(changed) if changed is not None else None)


def _budget(request: Lint, received: float | None) -> float | None:
    """The request's budget, cut to the client's deadline when it sent one.

    Under load a request can wait in the socket's backlog and for the event loop (measured: up
    to 0.7 s with 50 hooks at once) before ``received``; a reply after the hook's deadline is no
    reply, since the hook has fallen back by then. A deadline far from our clock is from another
    clock (a time namespace) and is ignored."""
    if request.deadline is None or received is None:
        return request.budget
    left = request.deadline - received
    if not -_CLOCK_SANITY < left < _CLOCK_SANITY:
        return request.budget
    return max(MIN_BUDGET, left if request.budget is None else min(request.budget, left))
