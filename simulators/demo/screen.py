"""Putting frames on stdout: redrawn in place on a terminal, appended snapshots otherwise."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from typing import Any

from .render import Segment, compose


class Screen:
    """Draws frames: redrawn in place on a terminal, appended snapshots otherwise."""

    def __init__(self, stream: Any, tty: bool, color: bool) -> None:
        self.stream = stream
        self.tty = tty
        self.color = color
        self._started = False
        self.broken = False  # stdout went away (a pipe into `head`, a closed terminal)

    def _write(self, text: str) -> None:
        if self.broken:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except OSError:
            self.broken = True
            # Python would complain again when it flushes stdout at exit.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())

    @property
    def room(self) -> int:
        """Lines a frame may have: one less than the terminal, or the last one would scroll."""
        return max(shutil.get_terminal_size().lines - 1, 2)

    def draw(self, lines: list[list[Segment]]) -> None:
        """Home the cursor and overwrite line by line: no full clear, so no flicker."""
        size = shutil.get_terminal_size()
        room = self.room
        if len(lines) > room:
            hidden = len(lines) - room + 1
            lines = [*lines[: room - 1], [(f"({hidden} more lines: enlarge the window)", "dim")]]
        text = "\x1b[K\n".join(compose(line, size.columns - 1, self.color) for line in lines)
        head = "\x1b[?25l\x1b[2J\x1b[H" if not self._started else "\x1b[H"
        self._started = True
        self._write(f"{head}{text}\x1b[K\n\x1b[J")

    def snapshot(self, lines: list[list[Segment]], agent_log: list[str]) -> None:
        """Plain mode: the table without its log section, then the agent's new log lines."""
        out = [time.strftime("--- %H:%M:%S ---")]
        out += [compose(line, None, False) for line in lines]
        out += [f"agent| {line}" for line in agent_log]
        self._write("\n".join(out) + "\n\n")

    def close(self) -> None:
        if self.tty and self._started:
            self._write("\x1b[?25h")
