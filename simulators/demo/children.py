"""The demo's child processes: started in sessions of their own, logging to files, stopped in order.

Also the exceptions the start-up raises, because each of them is about a child: the one
that did not come up, the one that died, or none when the user stopped us first.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
STOP_TIMEOUT = 10.0
TICK = 0.05


def say(text: str) -> None:
    """Progress and error messages: on stderr, so stdout carries only the table."""
    print(f"demo: {text}", file=sys.stderr, flush=True)


class DemoError(Exception):
    """Start-up failed; the message says what to do, `child` (if any) has the log."""

    def __init__(self, message: str, child: Child | None = None) -> None:
        super().__init__(message)
        self.child = child


class ChildDied(Exception):
    """A child exited while it should have been running."""

    def __init__(self, child: Child) -> None:
        super().__init__(child.name)
        self.child = child


class StopRequested(Exception):
    """Ctrl-C or SIGTERM arrived while we were still starting up."""


def _parent_death_signal() -> Callable[[], None] | None:
    """A `preexec_fn` asking Linux to SIGTERM the child when this process dies.

    Without it a ``kill -9`` of the demo (or of a test running it) would leave a broker
    and a simulator listening for ever, because the children live in sessions of their own.
    libc is loaded here, in the parent: the function runs between fork and exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def arm() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before the request was in place
            os._exit(1)

    return arm


class Child:
    """A child process whose stdout and stderr go to a log file in the demo's temp dir."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            try:
                self.process = subprocess.Popen(
                    self.argv,
                    cwd=REPO,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C is ours to hand on, in order
                    # Safe here: every child starts before paho's network thread does.
                    preexec_fn=_parent_death_signal(),
                )
            except OSError as err:
                raise DemoError(f"could not start the {self.name}: {err}") from err

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started), else the exit status."""
        return self.process.poll() if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, count: int) -> list[str]:
        """The last `count` non-blank lines (read from the file's last 64 KiB only)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(log.seek(0, os.SEEK_END) - 65536, 0))
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if line.strip()][-count:]

    def log_since(self, offset: int) -> tuple[list[str], int]:
        """Complete lines written after byte `offset`, and the offset after them."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                data = log.read()
        except FileNotFoundError:
            return [], offset
        data = data[: data.rfind(b"\n") + 1]  # a line still being written waits
        lines = data.decode(errors="replace").splitlines()
        return [line for line in lines if line.strip()], offset + len(data)

    def stop(self, hurry: Callable[[], bool]) -> bool:
        """SIGTERM, wait up to STOP_TIMEOUT (less once `hurry()`), then SIGKILL.

        True if it stopped as asked: with status 0, or by our SIGTERM itself (it was still
        starting and had no handler yet), or killed because the user insisted (`hurry()`).
        A child that had already exited counts as stopped; the caller reported it.
        """
        process = self.process
        if process is None or process.poll() is not None:
            return True
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline and not hurry():
            time.sleep(TICK)
        if process.poll() is None:
            if not hurry():
                say(f"the {self.name} did not stop within {STOP_TIMEOUT:g} s; killing it")
            process.kill()
            process.wait()
            return hurry()
        return process.returncode in (0, -signal.SIGTERM)

    def describe_exit(self) -> str:
        code = self.returncode
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"
