"""Composition root: builds the stages, runs them in one TaskGroup, handles signals.

Data flow (one way):

    DeviceRunner(driver) --Batch--> Pipeline --Message--> SqliteBuffer --rows--> MqttPublisher
       one task per device          seq, JSON             group commit,          delete on PUBACK
                                                          own thread

Start order is sinks first (buffer, publisher), sources last (runners); stop is the reverse:
runners stop, the buffer commits what is queued, the publisher drains it to the broker while
time allows, says offline, and the buffer closes. Whatever could not be sent stays buffered.

Signals: SIGTERM/SIGINT stop within 5 s, exit 0. SIGHUP reloads the config; an invalid new
config is logged problem by problem and the running one stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from . import __version__, sdnotify
from .backoff import Backoff
from .buffer import SqliteBuffer
from .buffer.sqlite import BufferUnavailable
from .config import ConfigError, Loaded, load_config
from .config.models import Config
from .drivers.registry import make_driver
from .health import health_payload
from .meta import meta_messages
from .pipeline import Pipeline
from .publisher import MqttPublisher
from .readings import Message
from .runner import DeviceRunner

log = logging.getLogger("edge_agent")

STATE_SAVE_SECONDS = 60.0
STOP_BUDGET = 4.5  # seconds from SIGTERM to exit, under systemd's and the contract's 5 s


class Agent:
    def __init__(self, loaded: Loaded) -> None:
        self.loaded = loaded
        self.cfg: Config = loaded.config
        self.buffer = SqliteBuffer(
            self.cfg.buffer.path,
            sync=self.cfg.buffer.sync,
            flush_interval=self.cfg.buffer.flush_interval,
            flush_messages=self.cfg.buffer.flush_messages,
            max_size=self.cfg.buffer.max_size,
            max_age=self.cfg.buffer.max_age,
            when_full=self.cfg.buffer.when_full,
            min_free=self.cfg.buffer.min_free,
        )
        self.runners: dict[str, DeviceRunner] = {}
        self._runner_tasks: dict[str, asyncio.Task[None]] = {}
        self._events: asyncio.Queue[str] = asyncio.Queue()
        self.publisher: MqttPublisher | None = None
        self.pipeline: Pipeline | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig, event in (
            (signal.SIGTERM, "stop"),
            (signal.SIGINT, "stop"),
            (signal.SIGHUP, "reload"),
        ):
            loop.add_signal_handler(sig, self._events.put_nowait, event)
        try:
            await self.buffer.open()
        except (BufferUnavailable, sqlite3.Error) as err:
            log.critical("cannot open the buffer: %s", err)
            return 1
        self.pipeline = Pipeline(
            self.cfg.prefix(),
            self.cfg.mqtt.qos,
            self.buffer.put,
            self.buffer.last_seqs(),
            self.buffer.seq_floor,
            self._indicator_engines(self.cfg, self.buffer.states()),
        )
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            pub_task = self._start_publisher()
            self._start_runners()
            watchdog = tg.create_task(self._watchdog())
            buffer_watch = tg.create_task(self.buffer.watch())
            keeper = tg.create_task(self._keep_states())
            health = tg.create_task(self._health())
            # What was built at start lives as long as the process: out of the collector's
            # sight, full collections stop costing 25-30 ms (and a poll slot) every few seconds.
            gc.collect()
            gc.freeze()
            sdnotify.notify("READY=1")
            log.info(
                "edge-agent %s running: %d devices, publishing to %s",
                __version__,
                len(self.cfg.devices),
                self.cfg.prefix(),
            )
            while (event := await self._events.get()) != "stop":
                pub_task = await self._reload(pub_task)
            sdnotify.notify("STOPPING=1")
            log.info("stopping")
            deadline = time.monotonic() + STOP_BUDGET
            await self._stop_runners()
            watchdog.cancel()
            buffer_watch.cancel()
            keeper.cancel()
            health.cancel()
            self._save_states()
            await self._stop_publisher(pub_task, deadline)
        await self.buffer.close()
        log.info("stopped; %d messages remain buffered", self.buffer.stats.depth)
        return 0

    @staticmethod
    def _indicator_engines(cfg: Config, states: Mapping[str, bytes]) -> dict[str, Any]:
        if not any(d.indicators for d in cfg.devices):
            return {}  # numpy and the indicator code are loaded only for configs that use them
        from .indicators.engine import DeviceIndicators

        engines = {}
        for d in cfg.devices:
            if d.indicators:
                engine = DeviceIndicators.create(d.name, d.indicators, d.indicator_interval, states)
                for problem in engine.restore_errors:
                    log.warning("%s: indicator %s", d.name, problem)
                engines[d.name] = engine
        return engines

    def _save_states(self) -> None:
        if self.pipeline is not None:
            for key, value in self.pipeline.states().items():
                self.buffer.save_state(key, value)

    async def _health(self) -> None:
        """Counters on `{prefix}/health`, retained, every `health_interval`."""
        started = time.monotonic()
        while True:
            await asyncio.sleep(self.cfg.health_interval)
            if self.publisher is not None:
                payload = health_payload(started, self.runners, self.buffer, self.publisher)
                await self.publisher.publish_snapshot(
                    Message(f"{self.cfg.prefix()}/health", payload, 1, retain=True)
                )

    async def _keep_states(self) -> None:
        """Running hours and counters survive a crash: saved with the buffer once a minute."""
        while True:
            await asyncio.sleep(STATE_SAVE_SECONDS)
            self._save_states()

    def _start_publisher(self) -> asyncio.Task[None]:
        cfg = self.cfg
        self.publisher = MqttPublisher(
            cfg.mqtt,
            cfg.client_id,
            cfg.prefix(),
            self.buffer,
            version=__version__,
            state_messages=lambda: meta_messages(self.cfg),
            replay_rate=cfg.buffer.replay_rate,
        )
        return self._tg.create_task(self.publisher.run(), name="publisher")

    async def _stop_publisher(self, task: asyncio.Task[None], deadline: float) -> None:
        assert self.publisher is not None
        remaining = deadline - time.monotonic() - 0.5
        if remaining > 0 and not await self.publisher.drain(remaining):
            log.warning("stopping before the broker took everything: the rest stays buffered")
        # offline goes out on the live connection, then a clean DISCONNECT (no last will)
        await self.publisher.close(timeout=max(0.1, deadline - time.monotonic()))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def _start_runners(self) -> None:
        assert self.pipeline is not None
        for dev in self.cfg.devices:
            runner = DeviceRunner(
                dev.name,
                make_driver(dev),
                [p.name for p in dev.points],
                interval=dev.poll_interval,
                emit=self.pipeline.emit,
                backoff=Backoff(dev.reconnect_delay, dev.reconnect_delay_max),
            )
            self.runners[dev.name] = runner
            self._runner_tasks[dev.name] = self._tg.create_task(runner.run(), name=dev.name)

    async def _stop_runners(self) -> None:
        # Cancel until they are done: on Python 3.11 asyncio.wait_for (which pymodbus awaits
        # for every answer) can swallow a cancel that coincides with the answer arriving
        # (CPython gh-86296), and the runner would poll on as if never told to stop.
        pending = set(self._runner_tasks.values())
        while pending:
            for t in pending:
                t.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.2)
        self._runner_tasks.clear()
        self.runners.clear()

    async def _reload(self, pub_task: asyncio.Task[None]) -> asyncio.Task[None]:
        sdnotify.notify("RELOADING=1")
        try:
            loaded = load_config(self.loaded.file)
        except ConfigError as err:
            for problem in err.problems:
                log.error("reload refused: %s", problem)
            log.error(
                "reload refused: %d problem(s); the running configuration stays", len(err.problems)
            )
            sdnotify.notify("READY=1")
            return pub_task
        old, new = self.cfg, loaded.config
        if new.buffer != old.buffer:
            log.warning(
                "reload: buffer settings change only at restart; keeping %s", old.buffer.path
            )
            new = new.model_copy(update={"buffer": old.buffer})
        await self._stop_runners()
        self.loaded, self.cfg = loaded, new
        assert self.pipeline is not None
        assert self.publisher is not None
        self.pipeline.prefix, self.pipeline.qos = new.prefix(), new.mqtt.qos
        states = {**self.buffer.states(), **self.pipeline.states()}
        self._save_states()
        self.pipeline.indicators = self._indicator_engines(new, states)
        if (new.mqtt, new.gateway, new.client_id) != (old.mqtt, old.gateway, old.client_id):
            await self._stop_publisher(pub_task, time.monotonic() + 2)
            pub_task = self._start_publisher()
        else:
            # A removed device's retained meta would describe a machine no longer polled.
            removed = {d.name for d in old.devices} - {d.name for d in new.devices}
            await self.publisher.republish_state(
                [Message(f"{old.prefix()}/meta/{n}", b"", 1, retain=True) for n in sorted(removed)]
            )
        self._start_runners()
        log.info("reloaded: %d devices", len(new.devices))
        sdnotify.notify("READY=1")
        return pub_task

    async def _watchdog(self) -> None:
        interval = sdnotify.watchdog_interval()
        if interval is None:
            return
        while True:
            sdnotify.notify("WATCHDOG=1")
            await asyncio.sleep(interval)


class _Formatter(logging.Formatter):
    """asyncua logs failures we handle (a renewal that timed out, a garbled answer) with a
    traceback; the runner already logs what they mean for the device. Such a line keeps the
    library's message and the exception's name and text, without the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        err = record.exc_info[1] if record.exc_info else None
        if err is None or not record.name.startswith(("asyncua", "pymodbus")):
            return super().format(record)
        saved = record.exc_info, record.exc_text
        record.exc_info = record.exc_text = None  # for this line only: other handlers keep it
        try:
            text = super().format(record)
        finally:
            record.exc_info, record.exc_text = saved
        return f"{text}: {type(err).__name__} {err}".rstrip()


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper())
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # pymodbus logs every failed request; the runner logs the transitions that matter.
    if level != "debug":
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        logging.getLogger("asyncua").setLevel(logging.ERROR)


async def run_agent(path: str) -> int:
    loaded = load_config(path)
    configure_logging(loaded.config.log_level)
    return await Agent(loaded).run()
