"""The live table: the board turned into lines of styled text (pure, no I/O).

Lines are lists of (text, style) segments, so that the same frame can be drawn in colour on
a terminal, cut to its width, or written plain into a pipe.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .board import Board, DeviceState

NO_STATUS_HINT_AFTER = 10.0  # seconds without the agent's status message

Segment = tuple[str, str]  # (text, style); style "" means plain
_SGR = {"good": "32", "bad": "31", "warn": "33", "dim": "2", "bold": "1", "title": "1;36"}


def compose(segments: Sequence[Segment], width: int | None, color: bool) -> str:
    """Join segments into one line of at most `width` visible columns, with colour codes."""
    out: list[str] = []
    room = width if width is not None else sys.maxsize
    for text, style in segments:
        if room <= 0:
            break
        if len(text) > room:
            text = text[: room - 1] + "…"
        room -= len(text)
        out.append(f"\x1b[{_SGR[style]}m{text}\x1b[0m" if color and style and text else text)
    return "".join(out)


def format_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return format_array(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != 0 and not 1e-3 <= abs(value) < 1e9:
            return f"{value:.4g}"
        return f"{value:.3f}"
    if isinstance(value, int | str):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def format_array(values: list[Any]) -> str:
    """An array reading (a waveform) in a few characters: its length and its RMS."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not values or len(numbers) != len(values):
        return f"[{len(values)} values]"
    rms = math.sqrt(math.fsum(v * v for v in numbers) / len(numbers))
    return f"[{len(values)} values, rms {rms:.3g}]"


def _number(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    return f"{value:.{digits}f}"


def summarize_indicator(item: dict[str, Any]) -> str:
    """One indicator of an ``indicators`` message in a few words: 3-4 of its values."""
    name = str(item.get("name", "?"))
    values = item.get("values")
    if not isinstance(values, dict):
        values = {}
    kind = item.get("kind")
    parts: list[str] = []
    if kind == "vibration":
        if "velocity_rms_mm_s" in values:
            zone = values.get("iso10816_zone", values.get("zone"))
            zone_text = f" zone {zone}" if zone is not None else ""
            parts.append(f"velocity {_number(values['velocity_rms_mm_s'], 1)} mm/s{zone_text}")
        if "kurtosis" in values:
            parts.append(f"kurtosis {_number(values['kurtosis'], 1)}")
        if "bpfo_ratio" in values:
            parts.append(f"bpfo ratio {_number(values['bpfo_ratio'], 1)}")
        elif "bpfo_amp" in values:
            parts.append(f"bpfo {_number(values['bpfo_amp'], 2)}")
    elif kind == "threshold" and "active" in values:
        parts.append("ALARM" if values["active"] else "ok")
    if not parts:  # another kind: its first few values
        parts = [
            f"{key} {_number(value)}"
            for key, value in list(values.items())[:3]
            if not isinstance(value, list | dict)
        ]
    quality = item.get("q")
    if quality not in (None, "good"):
        parts.append(f"({quality})")
    return f"{name}: {', '.join(parts) or '—'}"


def summarize_event(event: dict[str, Any]) -> str:
    words = [str(event.get("event", "?")), str(event.get("indicator", ""))]
    if "value" in event:
        words.append(_number(event["value"]))
    if "limit" in event:
        words.append(f"(limit {_number(event['limit'])})")
    if event.get("detail"):
        words.append(str(event["detail"]))
    return " ".join(w for w in words if w)


def format_age(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds:.0f} s"


@dataclass
class FrameInfo:
    """What the header needs besides the board."""

    broker_url: str
    broker_kind: str
    elapsed: float
    now_ms: int
    final: bool = False
    log_path: Path | None = None
    log_lines: list[str] = field(default_factory=list)


def render(board: Board, info: FrameInfo, compact: bool = False) -> list[list[Segment]]:
    """The whole table as lines of styled segments (the caller holds `board.lock`).

    `compact` leaves out the blank lines and the log's title, so that two pumps and three
    log lines still fit a classic 80x24 terminal.
    """
    state = board.agent_state
    state_style = {"online": "good", "offline": "bad"}.get(state, "warn")
    agent = f"agent {board.gateway}" if board.gateway else "agent"
    lines: list[list[Segment]] = [
        [
            ("edge-agent demo", "title"),
            (" · ", ""),
            ("stopped" if info.final else "Ctrl-C to stop", "bold"),
            (f" · up {info.elapsed:.0f} s · {board.messages} MQTT messages received", ""),
        ],
        [
            (f"broker {info.broker_url} ({info.broker_kind}) · {agent} ", ""),
            (state, state_style),
        ],
    ]
    if state == "starting" and info.elapsed > NO_STATUS_HINT_AFTER:
        lines.append([("no status message from the agent yet: see its log", "warn")])
    if board.malformed:
        lines.append(
            [(f"{board.malformed} malformed message(s); last: {board.last_malformed}", "bad")]
        )
    gap: list[list[Segment]] = [] if compact else [[]]
    if not board.devices:
        lines += [*gap, [("waiting for the agent's first messages ...", "dim")]]
    for dev in board.devices.values():
        lines += [*gap, *_render_device(dev, info.now_ms)]
    if info.log_path is not None:
        if compact:
            lines += [[("agent| ", "dim"), (line, "")] for line in info.log_lines]
        else:
            lines += [[], [(f"agent log ({info.log_path}), last lines:", "dim")]]
            lines += [[("  " + line, "")] for line in info.log_lines]
    return lines


def _render_device(dev: DeviceState, now_ms: int) -> list[list[Segment]]:
    title: list[Segment] = [(dev.name, "bold")]
    if dev.description:
        title.append((f"  {dev.description}", ""))
    every = f" · polled every {dev.poll_ms / 1000:g} s" if dev.poll_ms else ""
    seq = "-" if dev.seq is None else str(dev.seq)
    title.append((f"  · last message seq {seq}{every}", "dim"))
    if dev.seq_gaps:
        title.append((f"  {dev.seq_gaps} seq gap(s)", "warn"))
    name_w = max([len("point"), *(len(name) for name in dev.points)])
    values = {name: format_value(p.value) for name, p in dev.points.items() if p.seen}
    value_w = max([8, *(len(v) for v in values.values())])
    unit_w = max([4, *(len(p.unit) for p in dev.points.values())])
    lines: list[list[Segment]] = [
        title,
        [
            (
                f"  {'point':<{name_w}}  {'value':>{value_w}}  {'unit':<{unit_w}}  "
                f"{'quality':<9}  age",
                "dim",
            )
        ],
    ]
    stale_after = max(3 * (dev.poll_ms or 1000), 5000)
    for name, point in dev.points.items():
        row: list[Segment] = [(f"  {name:<{name_w}}  ", "")]
        if not point.seen:
            row += [(f"{'':>{value_w}}  {point.unit:<{unit_w}}  ", ""), ("no data yet", "dim")]
            lines.append(row)
            continue
        row.append((f"{values[name]:>{value_w}}  {point.unit:<{unit_w}}  ", ""))
        style = {"good": "good", "bad": "bad"}.get(point.quality, "warn")
        row.append((f"{point.quality:<9}", style))
        if point.ts_ms is not None:
            age_ms = now_ms - point.ts_ms
            row.append((f"  {format_age(age_ms / 1000)}", "warn" if age_ms > stale_after else ""))
        if point.err:
            row.append((f"  {point.err}", style))
        lines.append(row)
    if dev.indicators:
        summary = " · ".join(summarize_indicator(item) for item in dev.indicators)
        lines.append([("  indicators  ", "dim"), (summary, "")])
    if dev.last_event is not None:
        lines.append([("  last event  ", "dim"), (summarize_event(dev.last_event), "warn")])
    return lines
