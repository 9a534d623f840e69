"""bench.buffer's infrastructure: the buffers' file system, the broker, the simulator and the
agent runs of the scenarios (bench/buffer_writes.py, buffer_throughput.py, buffer_drain.py)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.buffer_disk import ScratchDisk, mount_of
from bench.buffer_runs import DrainRun, LogSummary, ThroughputRun, WriteRun, scan_log
from bench.buffer_setup import SITE, agent_config, say
from bench.children import Children, simulator_port, spawn_agent, start_broker, start_simulator


@dataclass(frozen=True)
class Scenario:
    """One agent run's files and names: its logs and config in the work dir, its buffer on
    the measured file system, its gateway id and topic prefix."""

    name: str
    logs: Path
    buffers: Path

    @property
    def db(self) -> Path:
        return self.buffers / "buffer.db"

    @property
    def log(self) -> Path:
        return self.logs / "agent.log"

    @property
    def config(self) -> Path:
        return self.logs / "agent.yaml"

    @property
    def gateway(self) -> str:
        return f"gw-{self.name}"

    @property
    def prefix(self) -> str:
        return f"maintenance4/{SITE}/{self.gateway}"


class Bench:
    """What the scenarios share, and their results: one broker and one simulator serve the
    whole run; every process started is stopped in `close()`, also on Ctrl-C."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.disk = ScratchDisk(workdir)
        self.data = workdir / "buffers"  # where the buffers are: see start()
        self.fixed: bool = args.values == "fixed"
        self.children = Children()
        self.broker: Any = None
        self.sim: subprocess.Popen[bytes] | None = None
        self.sim_port = 0
        self.writes: list[WriteRun] = []
        self.throughputs: list[ThroughputRun] = []
        self.drains: list[DrainRun] = []

    def runs(self) -> list[WriteRun | ThroughputRun | DrainRun]:
        return [*self.writes, *self.throughputs, *self.drains]

    # -- infrastructure --
    def start(self) -> None:
        if self.args.dir:
            self.data = Path(tempfile.mkdtemp(prefix="edge-bench-buffer-", dir=self.args.dir))
        elif self.disk.mount():
            self.data = self.disk.mnt
        else:
            say(f"buffers in the temp dir: {self.disk.why_not}")
            self.data.mkdir()
        say(f"buffers on {mount_of(self.data)}")
        # The subscriber must never lose a message while the backlog floods in: no cap on
        # the broker's queue towards it (mosquitto drops QoS 1 beyond 1,000 by default).
        self.broker = start_broker(self.workdir / "mosquitto", "max_queued_messages 0")
        say(f"mosquitto on port {self.broker.port} (pid {self.broker.pid})")
        flags = ["--deterministic"] if self.fixed else ["--seed", "1"]
        self.sim = start_simulator(self.children, self.workdir / "simulator.log", flags)
        self.sim_port = simulator_port(self.sim)
        say(f"simulator on port {self.sim_port} ({'fixed' if self.fixed else 'drifting'} values)")

    def close(self) -> None:
        self.children.stop_all()
        if self.broker is not None:
            self.broker.close()
        if self.args.dir and not self.args.keep:
            shutil.rmtree(self.data, ignore_errors=True)
        if self.args.keep and self.disk.mounted:
            subprocess.run(["umount", str(self.disk.mnt)], capture_output=True, check=False)
            say(f"the buffers are kept in the ext4 image {self.disk.image}")
        else:
            self.disk.close()

    def scenario(self, name: str) -> Scenario:
        """A scenario's directories, made: the buffer's on the measured file system."""
        scn = Scenario(name, self.workdir / name, self.data / name)
        scn.logs.mkdir()
        scn.buffers.mkdir()
        return scn

    def discard(self, buffers: Path) -> None:
        """The scratch file system is sized for one scenario's buffer at a time."""
        if not self.args.keep:
            shutil.rmtree(buffers, ignore_errors=True)

    def start_agent(
        self, scn: Scenario, url: str, sync: str, *, fast_reconnect: bool
    ) -> subprocess.Popen[bytes]:
        """The agent on the scenario's buffer, publishing to `url`, polling the simulator."""
        agent_config(
            scn.config,
            gateway=scn.gateway,
            url=url,
            buffer=scn.db,
            sync=sync,
            sim_port=self.sim_port,
            fast_reconnect=fast_reconnect,
        )
        return spawn_agent(self.children, scn.config, scn.log, stdout_too=False)

    def finish_agent(self, proc: subprocess.Popen[bytes], log: Path) -> LogSummary:
        stop_s = self.children.stop(proc)
        counts, problems = scan_log(log)
        return LogSummary(counts, problems, proc.returncode, stop_s)
