"""py-spy (optional: `pip install py-spy`): where the agent spends its time, or where it hangs.

py-spy samples another process from outside, so the agent runs unmodified; the benchmarks
attach it only outside their measured windows, or say that figures taken meanwhile are not
comparable.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.children import Children
from bench.common import PY, ROOT


def py_spy() -> str | None:
    """py-spy on PATH or beside this interpreter (the virtualenv's bin)."""
    spy = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
    return spy if Path(spy).exists() else None


def stacks(raw: Path) -> Iterator[tuple[list[str], int]]:
    """(frames, samples) per line of py-spy's collapsed stacks (`--format raw`); the first
    frame is the thread."""
    with contextlib.suppress(FileNotFoundError):
        for line in raw.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                yield stack.split(";"), int(count)


def dump(pid: int) -> str:
    """The stacks of every thread of `pid` now: where a process that does not stop hangs."""
    spy = py_spy()
    if spy is None:
        return "(install py-spy to see where it hangs)"
    argv = [spy, "dump", "--pid", str(pid)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return proc.stdout or proc.stderr


def record(pid: int, out: Path, seconds: float) -> str:
    """Sample the agent with py-spy (native frames too) and summarise its event-loop thread.

    Runs after the measured window, so it cannot distort the figures. py-spy's own idle
    detection is unreliable here (threads blocked in a queue show as busy), so only the main
    thread is summarised, with samples parked in epoll dropped; /proc says how much of the
    agent's CPU that thread is (the "event loop" column). The raw collapsed stacks stay in
    `out` for a flame graph.
    """
    spy = py_spy()
    if spy is None:
        return "profile: py-spy not found (pip install py-spy)"
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [spy, "record", "--pid", str(pid), "--duration", str(round(seconds)), "--rate", "200"]
    argv += ["--native", "--threads", "--format", "raw", "--output", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.exists():
        return f"profile: py-spy failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, n in stacks(out):
        if "MainThread" not in frames[0] or any("epoll_pwait" in f for f in frames):
            continue
        total += n
        names = [_frame(f) for f in frames[1:]]
        if names:
            own[names[-1]] += n
        inclusive.update(dict.fromkeys(names, n))  # once per stack, however deep the recursion
    if not total:
        return f"profile: no samples of the main thread in {out}"
    lines = [f"profile of the event loop thread, {total} samples on CPU ({out}):", "  self:"]
    for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:15]:
        lines.append(f"    {100 * n / total:5.1f} %  {name}")
    lines.append("  inclusive (edge_agent, pymodbus, paho):")
    ours = [
        kv
        for kv in inclusive.items()
        if any(k in kv[0] for k in ("edge_agent", "pymodbus", "paho"))
    ]
    for name, n in sorted(ours, key=lambda kv: -kv[1])[:25]:
        lines.append(f"    {100 * n / total:5.1f} %  {name}")
    return "\n".join(lines)


def _frame(frame: str) -> str:
    """`fn (/long/path/site-packages/pkg/mod.py:12)` -> `fn (pkg/mod.py)`."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/", "lib/python3."):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


def start(children: Children, pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy recording `pid` into `out` until stop(); None without py-spy."""
    spy = py_spy()
    if spy is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(out)]
    argv += ["--rate", "200", "--threads", "--nonblocking"]
    return children.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(children: Children, spy: subprocess.Popen[bytes]) -> None:
    """SIGINT makes py-spy write what it sampled."""
    with contextlib.suppress(ProcessLookupError):
        spy.send_signal(signal.SIGINT)
    try:
        spy.wait(15)
    except subprocess.TimeoutExpired:
        children.stop(spy)
    children.stop(spy)


def summarize(raw: Path, top: int = 14) -> list[str]:
    """Top functions of py-spy's collapsed stacks: own time (the leaf frame) and, per
    thread, the share of the samples."""
    own: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for frames, n in stacks(raw):
        total += n
        threads[frames[0]] += n
        own[frames[-1]] += n
    if not total:
        return []
    out = [f"{total} samples; by thread: "]
    out[0] += ", ".join(f"{name} {n / total:.0%}" for name, n in threads.most_common(4))
    out += [f"{n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    return out
