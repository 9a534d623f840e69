"""The demo run: start the children in order, show the table, stop them in reverse order."""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from .board import Board
from .brokers import (
    AMQTT_READY,
    BROKER_START_TIMEOUT,
    MOSQUITTO_READY,
    PORT_IN_USE,
    amqtt_available,
    broker_ready,
    find_mosquitto,
    free_port,
    mosquitto_config,
)
from .children import HOST, REPO, TICK, Child, ChildDied, DemoError, StopRequested, say
from .render import FrameInfo, render
from .screen import Screen
from .viewer import Viewer

CONFIG = REPO / "config" / "demo.yaml"
SIMULATOR_START_TIMEOUT = 30.0  # importing pymodbus takes a while on a small Pi
FRAME_INTERVAL = 0.25  # at most 4 redraws a second on a terminal
PLAIN_INTERVAL = 2.0  # one snapshot every 2 s when stdout is not a terminal
LOG_LINES = 3

_LOG_DATE = re.compile(r"^\d{4}-\d\d-\d\d ")
_SIM_READY = re.compile(r"READY modbus (\S+):(\d+)")
_OPCUA_READY = re.compile(r"READY opcua opc\.tcp://[^\s:/]+:(\d+)")


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
                marker = MOSQUITTO_READY
            else:
                argv = [sys.executable, "-m", "simulators.demo", "--serve-amqtt", str(port)]
                broker = self.spawn("amqtt broker", argv, f"broker-{attempt}.log")
                marker = re.compile(AMQTT_READY)
            try:
                self.wait_until(
                    broker,
                    f"accept connections on {HOST}:{port}",
                    functools.partial(broker_ready, broker, marker, port),
                    BROKER_START_TIMEOUT,
                )
            except ChildDied:
                if attempt < 2 and PORT_IN_USE.search(broker.log_text()):
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
