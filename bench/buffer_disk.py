"""bench.buffer's disk: the file system the buffers live on, what it writes, and the files."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from bench.buffer_setup import POINTS, WAL_AUTOCHECKPOINT
from bench.common import wait_for


def device_stat(path: Path) -> Path | None:
    """The block device statistics file of the file system that holds `path`."""
    st = os.stat(path)
    stat = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/stat")
    return stat if stat.exists() else None


def device_written(stat: Path | None) -> int:
    """Bytes written to the device so far (sectors written x 512), by everybody."""
    if stat is None:
        return 0
    return int(stat.read_text().split()[6]) * 512


def _mount(path: Path) -> list[str] | None:
    """The /proc/mounts entry (device, mount point, type, options, …) of the file system
    that holds `path`: the longest mount point it is under."""
    best: list[str] | None = None
    real = os.path.realpath(path)
    for line in Path("/proc/mounts").read_text().splitlines():
        entry = line.split()
        point = entry[1]
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) > len(best[1])):
            best = entry
    return best


def mount_of(path: Path) -> str:
    """'/dev/vda on / (ext4, rw,relatime,...)' for the file system that holds `path`."""
    entry = _mount(path)
    if entry is None:
        return "unknown"
    dev, point, fstype, opts = entry[:4]
    return f"{dev} on {point} ({fstype}, {opts})"


def journal_info(path: Path) -> Path | None:
    """/proc/fs/jbd2/<dev>-<n>/info of the ext4 file system that holds `path`."""
    entry = _mount(path)
    name = Path(os.path.realpath(entry[0])).name if entry is not None and entry[0] else ""
    found = sorted(Path("/proc/fs/jbd2").glob(f"{name}-*/info")) if name else []
    return found[0] if found else None


def journal_commits(info: Path | None) -> int:
    """Transactions the ext4 journal committed since the mount (first line of the info)."""
    if info is None:
        return 0
    return int(info.read_text().split(None, 1)[0])


def wait_wal_full(db: Path, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until the WAL has reached its full size: at the first checkpoint (after
    wal_autocheckpoint pages) SQLite starts writing it again from the top, and it no
    longer grows. Until then every fsync also commits ext4's journal (the file's size
    changes), which a gateway running for months does not pay: it is not steady state."""
    from edge_agent.buffer.store import PAGE_SIZE

    full = WAL_AUTOCHECKPOINT * (PAGE_SIZE + 24)
    wal = Path(f"{db}-wal")

    def grown() -> bool:
        with contextlib.suppress(FileNotFoundError):
            return wal.stat().st_size >= full
        return False

    return wait_for(grown, timeout, step=0.2, proc=proc)


def file_bytes(db: Path) -> int:
    """The buffer's size on disk: the database and its WAL."""
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(FileNotFoundError):
            total += Path(f"{db}{suffix}").stat().st_size
    return total


def committed_between(db: Path, wall0: float, wall1: float) -> tuple[int, int]:
    """(messages, readings) of the rows committed between two wall-clock instants, from a
    stopped agent's buffer file (`created_ms` is the commit time). Every telemetry message
    of the bench carries POINTS readings."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        n = con.execute(
            "SELECT count(*) FROM messages WHERE created_ms >= ? AND created_ms < ? "
            "AND topic LIKE '%/telemetry'",
            (round(wall0 * 1000), round(wall1 * 1000)),
        ).fetchone()[0]
    finally:
        con.close()
    return n, n * POINTS


class ScratchDisk:
    """A private ext4 file system in a loop-mounted image, for the buffers.

    Its block device's statistics then count exactly what the buffer's writes cost the
    disk (data, metadata and the ext4 journal that an fsync forces), and nothing of the
    other tenants of this shared machine, whose writes land on /dev/vda too. The inode
    tables and the journal are initialised by mkfs, so that no lazy-init thread writes in
    the background during a window. Without root or loop devices the buffers go to the
    temp dir and the device column then shows the whole disk.
    """

    def __init__(self, workdir: Path, size: int = 3 * 2**30) -> None:
        self.image = workdir / "scratch.img"
        self.mnt = workdir / "scratch"
        self.size = size
        self.mounted = False
        self.why_not = ""

    def mount(self) -> bool:
        def sh(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(argv, capture_output=True, text=True, check=False)

        if os.geteuid() != 0 or not all(shutil.which(t) for t in ("mkfs.ext4", "mount")):
            self.why_not = "mounting an ext4 image needs root, mkfs.ext4 and mount"
            return False
        self.mnt.mkdir()
        with self.image.open("wb") as f:
            f.truncate(self.size)
        mkfs = sh(
            "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(self.image)
        )
        if mkfs.returncode:
            self.why_not = f"mkfs.ext4 failed: {mkfs.stderr.strip()}"
            return False
        mount = sh("mount", "-o", "loop", str(self.image), str(self.mnt))
        if mount.returncode:
            self.why_not = f"cannot loop-mount an ext4 image: {mount.stderr.strip()}"
            return False
        self.mounted = True
        return True

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.mnt)], capture_output=True, check=False)
            self.mounted = False
        with contextlib.suppress(FileNotFoundError):
            self.image.unlink()
