"""Helpers shared by the benchmarks (bench/run.py, bench/buffer.py, bench/opcua.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

T = TypeVar("T")


def say(text: str) -> None:
    """Progress goes to stderr, so that stdout carries the report alone."""
    print(text, file=sys.stderr, flush=True)


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The next stdout line of `proc`, or "" on timeout or exit."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return ""
        chunk = os.read(fd, 1)
        if not chunk:
            return ""
        buf += chunk
    return buf.decode().strip()


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    *,
    step: float = 0.05,
    proc: subprocess.Popen[bytes] | None = None,
) -> bool:
    """Poll `condition` every `step` s until it holds (True) or `timeout` passes (False);
    False at once when `proc` has exited, since what it would have done cannot come."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        if condition():
            return True
        time.sleep(step)
    return False


def tail(path: Path, lines: int, sep: str = "\n") -> str:
    """The last `lines` lines of a child's log, for a failure message."""
    with contextlib.suppress(FileNotFoundError):
        return sep.join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return "(no log)"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**MISSED**"


def run_async(coro: Awaitable[T]) -> T:
    """Run on the agent's event loop (uvloop where installed), so that what is measured
    beside the agent is comparable with it."""

    async def main() -> T:
        return await coro

    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())


@contextlib.contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so that the cleanup in `finally` runs either way."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_scenarios(
    body: Callable[[], T],
    close: Callable[[], None],
    workdir: Path,
    keep: str | None,
    tell: Callable[[str], None] = say,
) -> T | None:
    """`body()`'s result, or None when Ctrl-C or SIGTERM interrupted it. Either way every
    child is stopped (`close`) and `workdir` removed, unless kept (`keep` says what it
    holds), so that a benchmark leaves nothing running or behind."""
    try:
        with terminated_as_interrupt():
            return body()
    except KeyboardInterrupt:
        tell("interrupted: stopping everything")
        return None
    finally:
        close()
        if keep:
            tell(f"{keep} kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
