"""The demo: ``./scripts/demo`` (or ``python -m simulators.demo``).

Starts four child processes on free ports of 127.0.0.1 and shows the agent's telemetry
as a live table until Ctrl-C:

1. the Modbus pump simulator (``python -m simulators modbus --port 0``, values moving) and
   the OPC UA motor simulator (``python -m simulators opcua --port 0``, values moving too;
   it needs asyncua, a project dependency);
2. an MQTT broker: ``mosquitto`` with a generated config when it is installed, else (or
   with ``--embedded-broker``) amqtt, a pure-Python broker, run by this module in a child
   interpreter (``--serve-amqtt PORT``); amqtt speaks MQTT 3.1.1 only, so the agent and
   the viewer are told to use that;
3. the agent itself: ``python -m edge_agent run config/demo.yaml`` with the DEMO_* variables
   pointing it at the simulators and the broker, and its buffer and log in a temp dir.

This process subscribes to ``maintenance4/demo/#`` with paho-mqtt and redraws a table a few
times a second (plain snapshots every few seconds when stdout is not a terminal).  Array
values (motor-7's vibration waveform) are shown as a count and an RMS; a device with
indicators gets a line summing up its latest ``indicators`` message and one with its last
``events`` entry.

The children run in sessions of their own, so a Ctrl-C reaches only this process, which
then stops them in order (agent first, so it can say "offline" while the broker is still
there) and removes the temp dir.  On Linux they are also asked to get SIGTERM should this
process die without cleaning up (``kill -9``), so nothing is left behind listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import importlib.util
import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "demo.yaml"
HOST = "127.0.0.1"
TOPIC_FILTER = "maintenance4/demo/#"

SIMULATOR_START_TIMEOUT = 30.0  # importing pymodbus takes a while on a small Pi
BROKER_START_TIMEOUT = 15.0
SUBSCRIBE_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
FRAME_INTERVAL = 0.25  # at most 4 redraws a second on a terminal
PLAIN_INTERVAL = 2.0  # one snapshot every 2 s when stdout is not a terminal
TICK = 0.05
LOG_LINES = 3
NO_STATUS_HINT_AFTER = 10.0  # seconds without the agent's status message
# Debian installs mosquitto in /usr/sbin, which is not on an ordinary user's PATH.
EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin")

_LOG_DATE = re.compile(r"^\d{4}-\d\d-\d\d ")
_SIM_READY = re.compile(r"READY modbus (\S+):(\d+)")
_OPCUA_READY = re.compile(r"READY opcua opc\.tcp://[^\s:/]+:(\d+)")
_MOSQUITTO_READY = re.compile(r"mosquitto version \S+ running")
_AMQTT_READY = "READY amqtt"
_PORT_IN_USE = re.compile(r"address already in use", re.IGNORECASE)


def say(text: str) -> None:
    """Progress and error messages: on stderr, so stdout carries only the table."""
    print(f"demo: {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


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


def free_port() -> int:
    """A port that was free a moment ago (the kernel's pick); callers retry on a clash."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def broker_ready(broker: Child, marker: re.Pattern[str], port: int) -> bool:
    """The broker logged that it runs *and* accepts TCP on `port`.

    The marker as well as the connect: a stranger that grabbed the port between
    `free_port()` and the broker's bind would answer the connect.
    """
    return bool(marker.search(broker.log_text())) and port_accepts(port)


def find_mosquitto() -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_BIN_DIRS])
    return shutil.which("mosquitto", path=path)


def amqtt_available() -> bool:
    return importlib.util.find_spec("amqtt") is not None


def mosquitto_config(port: int) -> str:
    # Started as root, mosquitto would switch to the `mosquitto` user, and that change of
    # credentials cancels the parent-death signal: it would outlive a killed demo.
    user = ["user root"] if os.geteuid() == 0 else []
    return "\n".join(
        [
            "# written by simulators/demo.py for one demo run",
            *user,
            f"listener {port} {HOST}",
            "allow_anonymous true",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "",
        ]
    )


# --------------------------------------------------------------------------- what we saw


@dataclass
class PointState:
    """The last reading of one point, plus what the meta message says about it."""

    unit: str = ""
    seen: bool = False
    value: Any = None
    quality: str = ""
    err: str | None = None
    ts_ms: int | None = None


@dataclass
class DeviceState:
    name: str
    description: str | None = None
    poll_ms: int | None = None
    points: dict[str, PointState] = field(default_factory=dict)
    seq: int | None = None
    seq_gaps: int = 0  # messages whose seq was not the previous one + 1
    indicators: list[dict[str, Any]] = field(default_factory=list)  # the latest message's
    last_event: dict[str, Any] | None = None

    def point(self, name: str) -> PointState:
        return self.points.setdefault(name, PointState())


class Board:
    """Everything the viewer received, updated from paho's thread, read by the renderer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.devices: dict[str, DeviceState] = {}
        self.agent_state = "starting"
        self.gateway: str | None = None
        self.messages = 0
        self.malformed = 0
        self.last_malformed: str | None = None

    def device(self, name: str) -> DeviceState:
        return self.devices.setdefault(name, DeviceState(name))

    def handle(self, topic: str, payload: bytes | bytearray) -> None:
        with self.lock:
            self.messages += 1
            try:
                doc = json.loads(payload)
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                self._apply(topic.split("/"), doc)
            except (ValueError, TypeError, KeyError, AttributeError) as err:
                self.malformed += 1
                self.last_malformed = f"{topic}: {err}"

    def _apply(self, parts: list[str], doc: dict[str, Any]) -> None:
        # maintenance4/demo/<gateway>/status | .../meta/<device> | .../<device>/telemetry
        if len(parts) == 4 and parts[3] == "status":
            self.gateway = parts[2]
            self.agent_state = str(doc["state"])
        elif len(parts) == 5 and parts[3] == "meta":
            self._apply_meta(self.device(parts[4]), doc)
        elif len(parts) == 5 and parts[4] == "telemetry":
            self._apply_telemetry(self.device(str(doc.get("device", parts[3]))), doc)
        elif len(parts) == 5 and parts[4] == "indicators":
            items = doc["indicators"]
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ValueError("indicators is not a list of objects")
            self.device(str(doc.get("device", parts[3]))).indicators = items
        elif len(parts) == 5 and parts[4] == "events":
            events = doc["events"]
            if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
                raise ValueError("events is not a list of objects")
            if events:
                self.device(str(doc.get("device", parts[3]))).last_event = events[-1]

    @staticmethod
    def _apply_meta(dev: DeviceState, doc: dict[str, Any]) -> None:
        dev.description = doc.get("description")
        dev.poll_ms = doc.get("poll_interval_ms")
        ordered: dict[str, PointState] = {}
        for item in doc["points"]:
            state = dev.points.get(item["name"], PointState())
            state.unit = str(item.get("unit") or "")
            ordered[item["name"]] = state
        # The config's order, then anything the telemetry has that the meta does not.
        dev.points = ordered | {k: v for k, v in dev.points.items() if k not in ordered}

    @staticmethod
    def _apply_telemetry(dev: DeviceState, doc: dict[str, Any]) -> None:
        seq = doc.get("seq")
        if isinstance(seq, int):
            if dev.seq is not None and seq != dev.seq + 1:
                dev.seq_gaps += 1
            dev.seq = seq
        for reading in doc["readings"]:
            point = dev.point(str(reading["point"]))
            point.seen = True
            point.value = reading.get("v")
            point.quality = str(reading.get("q", "?"))
            point.err = reading.get("err")
            point.ts_ms = reading.get("ts")


# --------------------------------------------------------------------------- rendering

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


# --------------------------------------------------------------------------- the viewer


class Viewer:
    """A paho-mqtt 2 subscriber to `maintenance4/demo/#` feeding the board."""

    def __init__(self, board: Board, port: int, mqtt311: bool) -> None:
        self.board = board
        self.port = port
        self.subscribed = threading.Event()
        protocol = MQTTProtocolVersion.MQTTv311 if mqtt311 else MQTTProtocolVersion.MQTTv5
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"edge-agent-demo-{os.getpid()}",
            protocol=protocol,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self, stopping: Callable[[], bool]) -> None:
        try:
            self.client.connect(HOST, self.port, keepalive=30)
        except OSError as err:
            message = f"could not connect to the broker on {HOST}:{self.port}: {err}"
            raise DemoError(message) from err
        self.client.loop_start()
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
        while not self.subscribed.wait(TICK):
            if stopping():
                raise StopRequested
            if time.monotonic() > deadline:
                raise DemoError(f"no SUBACK from the broker within {SUBSCRIBE_TIMEOUT:g} s")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason.is_failure:  # also after a reconnect: sessions are clean
            client.subscribe(TOPIC_FILTER, qos=1)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if reasons and not reasons[0].is_failure:
            self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.board.handle(msg.topic, msg.payload)


# --------------------------------------------------------------------------- orchestration


class Demo:
    def __init__(self, seconds: float | None, embedded_broker: bool) -> None:
        self.seconds = seconds
        self.embedded_broker = embedded_broker
        self.signals = 0
        self.workdir = Path(tempfile.mkdtemp(prefix="edge-agent-demo-"))
        self.board = Board()
        self.children: list[Child] = []  # in start order
        self.agent: Child | None = None
        self.viewer: Viewer | None = None
        self.broker_kind = ""
        self.broker_port = 0
        self.modbus_port = 0
        self.opcua_port = 0
        self.log_offset = 0  # how much of the agent's log the plain snapshots have shown
        self.died = False  # a child died: keep its message on screen, no last frame
        tty = sys.stdout.isatty()
        self.screen = Screen(sys.stdout, tty, tty and not os.environ.get("NO_COLOR"))
        self.started_at = time.monotonic()

    # -- signals ----------------------------------------------------------------------
    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """Only counts: the main loop notices. A second signal cuts the shutdown short."""
        self.signals += 1

    def stopping(self) -> bool:
        return self.signals > 0 or self.screen.broken

    def hurry(self) -> bool:
        return self.signals > 1

    # -- the run ----------------------------------------------------------------------
    def run(self) -> int:
        say(f"work dir {self.workdir}")
        code = 0
        try:
            self.start_simulators()
            self.start_broker()
            self.viewer = Viewer(self.board, self.broker_port, self.broker_kind == "amqtt")
            self.viewer.start(self.stopping)
            self.start_agent()
            self.show()
        except StopRequested:
            pass
        except ChildDied as died:
            self.died = True
            self.report_death(died.child)
            code = 1
        except DemoError as err:
            self.screen.close()
            say(str(err))
            if err.child is not None:
                self.print_log(err.child, 15)
            code = 1
        try:
            if not self.shutdown() and code == 0:
                code = 1
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
        say(f"removed {self.workdir}; exit status {code}")
        return code

    def spawn(
        self, name: str, argv: list[str], log_name: str, env: dict[str, str] | None = None
    ) -> Child:
        child = Child(name, argv, self.workdir / log_name)
        self.children.append(child)
        child.start(env)
        return child

    def wait_until(
        self, child: Child, what: str, ready: Callable[[], bool], timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.stopping():
                raise StopRequested
            if not child.running:
                raise ChildDied(child)
            if time.monotonic() > deadline:
                raise DemoError(f"the {child.name} did not {what} within {timeout:g} s", child)
            time.sleep(TICK)

    def start_simulators(self) -> None:
        """Both simulators at once (each takes a few seconds), then wait for their READY."""
        argv = [sys.executable, "-m", "simulators", "modbus", "--host", HOST, "--port", "0"]
        sim = self.spawn("Modbus simulator", argv, "simulator.log")
        argv = [sys.executable, "-m", "simulators", "opcua", "--host", HOST, "--port", "0"]
        opcua = self.spawn("OPC UA simulator", argv, "opcua-simulator.log")
        self.modbus_port = self._wait_for_ready(sim, _SIM_READY, 2)
        say(f"Modbus simulator (pid {sim.pid}) ready on {HOST}:{self.modbus_port}")
        self.opcua_port = self._wait_for_ready(opcua, _OPCUA_READY, 1)
        say(f"OPC UA simulator (pid {opcua.pid}) ready on {HOST}:{self.opcua_port}")

    def _wait_for_ready(self, sim: Child, ready: re.Pattern[str], group: int) -> int:
        """Wait for the simulator's READY line; the port it gives."""
        self.wait_until(
            sim,
            "print its READY line",
            lambda: ready.search(sim.log_text()) is not None,
            SIMULATOR_START_TIMEOUT,
        )
        match = ready.search(sim.log_text())
        assert match is not None
        return int(match.group(group))

    def start_broker(self) -> None:
        mosquitto = None if self.embedded_broker else find_mosquitto()
        if mosquitto is None:
            if not amqtt_available():
                raise DemoError(
                    "no MQTT broker: install mosquitto (sudo apt-get install mosquitto) or "
                    "amqtt (.venv/bin/pip install amqtt)"
                )
            if not self.embedded_broker:
                say("mosquitto is not installed; using the embedded amqtt broker (MQTT 3.1.1)")
        for attempt in range(3):
            port = free_port()
            if mosquitto is not None:
                conf = self.workdir / "mosquitto.conf"
                conf.write_text(mosquitto_config(port))
                broker = self.spawn(
                    "mosquitto broker", [mosquitto, "-c", str(conf)], f"broker-{attempt}.log"
                )
                marker = _MOSQUITTO_READY
            else:
                argv = [sys.executable, "-m", "simulators.demo", "--serve-amqtt", str(port)]
                broker = self.spawn("amqtt broker", argv, f"broker-{attempt}.log")
                marker = re.compile(_AMQTT_READY)
            try:
                self.wait_until(
                    broker,
                    f"accept connections on {HOST}:{port}",
                    functools.partial(broker_ready, broker, marker, port),
                    BROKER_START_TIMEOUT,
                )
            except ChildDied:
                if attempt < 2 and _PORT_IN_USE.search(broker.log_text()):
                    continue  # lost the race for the port: another one
                raise
            self.broker_kind = "mosquitto" if mosquitto is not None else "amqtt"
            self.broker_port = port
            say(f"{broker.name} (pid {broker.pid}) ready on {self.broker_url}")
            return

    @property
    def broker_url(self) -> str:
        return f"mqtt://{HOST}:{self.broker_port}"

    def start_agent(self) -> None:
        env = {
            **os.environ,
            "DEMO_MQTT_PORT": str(self.broker_port),
            "DEMO_MODBUS_PORT": str(self.modbus_port),
            "DEMO_OPCUA_PORT": str(self.opcua_port),
            "DEMO_DIR": str(self.workdir),
            "DEMO_MQTT_PROTOCOL": "3.1.1" if self.broker_kind == "amqtt" else "5",
            "PYTHONUNBUFFERED": "1",
        }
        argv = [sys.executable, "-m", "edge_agent", "run", str(CONFIG.relative_to(REPO))]
        self.agent = self.spawn("edge agent", argv, "agent.log", env)
        say(f"edge agent (pid {self.agent.pid}) started on {CONFIG.relative_to(REPO)}")

    def show(self) -> None:
        """The live table until a signal, the --seconds timer or a child's death."""
        started = time.monotonic()
        self.started_at = started
        next_draw = started if self.screen.tty else started + PLAIN_INTERVAL
        while True:
            now = time.monotonic()
            if self.stopping():
                return
            if self.seconds is not None and now - started >= self.seconds:
                return
            for child in self.children:
                if not child.running:
                    raise ChildDied(child)
            if now >= next_draw:
                self.draw()
                next_draw = now + (FRAME_INTERVAL if self.screen.tty else PLAIN_INTERVAL)
            time.sleep(TICK)

    def draw(self, final: bool = False) -> None:
        tty = self.screen.tty
        if self.agent is None:
            agent_log = []
        elif tty:
            agent_log = self.agent.log_tail(LOG_LINES)
        else:  # plain snapshots append what the agent logged since the last one
            agent_log, self.log_offset = self.agent.log_since(self.log_offset)
        agent_log = [_LOG_DATE.sub("", line) for line in agent_log]
        info = FrameInfo(
            broker_url=self.broker_url,
            broker_kind=self.broker_kind,
            elapsed=time.monotonic() - self.started_at,
            now_ms=time.time_ns() // 1_000_000,
            final=final,
            log_path=self.agent.log_path if self.agent and tty else None,
            log_lines=agent_log,
        )
        with self.board.lock:
            lines = render(self.board, info)
            if tty and len(lines) > self.screen.room:
                lines = render(self.board, info, compact=True)
        if tty:
            self.screen.draw(lines)
        else:
            self.screen.snapshot(lines, agent_log)

    # -- the end ----------------------------------------------------------------------
    def report_death(self, child: Child) -> None:
        self.screen.close()
        say(f"the {child.name} (pid {child.pid}) {child.describe_exit()} unexpectedly")
        self.print_log(child, 10)

    def print_log(self, child: Child, count: int) -> None:
        tail = child.log_tail(count)
        say(f"last lines of its log ({child.log_path}):" if tail else "its log is empty")
        for line in tail:
            print(f"  {line}", file=sys.stderr)
        sys.stderr.flush()

    def shutdown(self) -> bool:
        """Stop the agent, then the viewer, broker and simulator; False if one misbehaved."""
        clean = True
        agent = self.agent
        if agent is not None:
            if not agent.stop(self.hurry):
                clean = False
                say(f"the edge agent {agent.describe_exit()} when asked to stop")
                self.print_log(agent, 10)
            self._wait_for_offline()
        if self.viewer is not None:
            if agent is not None and not self.died:
                self.draw(final=True)  # the last frame: the agent says offline
            self.viewer.stop()
        self.screen.close()
        for child in reversed(self.children):
            if child is not agent and not child.stop(self.hurry):
                clean = False
                say(f"the {child.name} {child.describe_exit()} when asked to stop")
                self.print_log(child, 10)
        with self.board.lock:
            say(f"stopped; {self.board.messages} MQTT message(s) received")
        return clean

    def _wait_for_offline(self) -> None:
        """The agent publishes "offline" (retained) as it stops: give it a moment to arrive."""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not self.hurry():
            with self.board.lock:
                if self.board.agent_state == "offline":
                    return
            time.sleep(TICK)


# --------------------------------------------------------------------------- amqtt


async def serve_amqtt(port: int) -> None:
    """The embedded broker: anonymous, plain TCP on 127.0.0.1, until SIGTERM or SIGINT."""
    # Only needed in this mode, and optional (the `demo` extra).
    from amqtt.broker import Broker  # type: ignore[import-untyped]

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    print(f"{_AMQTT_READY} {HOST}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./scripts/demo",
        description="Run the pump and motor simulators, an MQTT broker and edge-agent on "
        "config/demo.yaml, and show the published readings as a live table until Ctrl-C.",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        metavar="N",
        help="show the table for N seconds, then stop cleanly",
    )
    parser.add_argument(
        "--embedded-broker",
        action="store_true",
        help="use the embedded amqtt broker (MQTT 3.1.1) even if mosquitto is installed",
    )
    parser.add_argument("--serve-amqtt", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds is not None and args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_amqtt is not None:
        logging.basicConfig(
            level=logging.WARNING,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        asyncio.run(serve_amqtt(args.serve_amqtt))
        return 0
    demo = Demo(args.seconds, args.embedded_broker)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, demo.on_signal)
    return demo.run()


if __name__ == "__main__":
    sys.exit(main())
