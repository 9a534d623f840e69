"""Power cuts, simulated for real: the buffer lives on an ext4 file system in a loop-mounted
image. The writer is killed and the image is copied at once: the copy holds what had reached
the "disk", not what sat in the page cache, like a machine that lost power. The copy is then
mounted (ext4 replays its journal, as at boot) and the buffer opened from it.

With sync: full, every message the buffer reported as committed must be in the copy, and the
database must always open. Needs root (mount) and a kernel with loop devices; skipped elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.buffer import SqliteBuffer

ROOT = Path(__file__).resolve().parents[2]


def sh(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


class Disk:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.image = work / "disk.img"
        self.mnt = work / "mnt"
        self.mnt.mkdir()
        for tool in ("mkfs.ext4", "mount", "umount"):
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} is not installed")
        if os.geteuid() != 0:
            pytest.skip("mounting a loop device needs root")
        with self.image.open("wb") as f:
            f.truncate(64 * 2**20)
        if sh("mkfs.ext4", "-q", "-F", str(self.image)).returncode:
            pytest.skip("mkfs.ext4 failed")
        self.mount()

    def mount(self) -> None:
        proc = sh("mount", "-o", "loop", str(self.image), str(self.mnt))
        if proc.returncode:
            pytest.skip(f"cannot loop-mount an ext4 image here: {proc.stderr.strip()}")

    def cut(self) -> None:
        """Copy the image as it is now (the power cut), then boot from the copy."""
        snapshot = self.work / "after-cut.img"
        shutil.copyfile(self.image, snapshot)  # before the page cache is written back
        sh("umount", str(self.mnt))
        snapshot.replace(self.image)
        self.mount()

    def close(self) -> None:
        sh("umount", "-l", str(self.mnt))


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    d = Disk(tmp_path)
    yield d
    d.close()


def run_writer(db: Path, seconds: float) -> tuple[int, list[int]]:
    """Start the writer, let it run, kill -9 it. Returns (the seq it started after, the seqs
    it confirmed as committed)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.powercut_writer", str(db), "full"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    assert first[0] == "START", first
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    return int(first[1]), [int(x) for x in out.split()]


async def stored(db: Path) -> tuple[list[int], list[str]]:
    buf = SqliteBuffer(db, min_free=0)
    await buf.open()
    rows = await buf.fetch(0, 1_000_000)
    await buf.close()
    return [r.message.seq for r in rows], buf.stats.quarantined


@pytest.mark.parametrize(
    "cuts", [pytest.param(8, id="8"), pytest.param(50, id="50", marks=pytest.mark.slow)]
)
def test_sync_full_loses_nothing_buffered_over_power_cuts(disk: Disk, cuts: int) -> None:
    rng = random.Random(cuts)
    db = disk.mnt / "buffer.db"
    confirmed: list[int] = []
    for _ in range(cuts):
        start, seqs = run_writer(db, rng.uniform(0.2, 0.8))
        assert seqs, "the writer confirmed nothing"
        assert start == (confirmed[-1] if confirmed else 0) or start >= confirmed[-1]
        confirmed.extend(seqs)
        disk.cut()
        present, quarantined = asyncio.run(stored(db))
        assert quarantined == [], "the database did not open after a power cut"
        missing = sorted(set(confirmed) - set(present))
        assert missing == [], f"{len(missing)} committed messages lost: {missing[:10]}"
    assert len(confirmed) > cuts * 10
