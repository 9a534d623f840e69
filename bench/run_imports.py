"""bench.run's import check: which heavy packages a Modbus-only agent loads."""

from __future__ import annotations

import ast
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import PY, ROOT

HEAVY = ("asyncua", "numpy", "pymodbus")  # the import check reports these packages
IMPORT_CHECK = (
    "import edge_agent.app, sys; print(sorted(m for m in sys.modules "
    "if m.split('.')[0] in ('asyncua','numpy','pymodbus')))"
)
IMPORT_RUNNING = (
    "import sys, json, edge_agent.app\n"
    "from edge_agent.config import load_config\n"
    "from edge_agent.drivers.registry import make_driver\n"
    "drivers = [make_driver(d) for d in load_config(sys.argv[1]).config.devices]\n"
    f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
    "print(json.dumps({'heavy': heavy, 'total': len(sys.modules)}))\n"
)


@dataclass
class ImportCheck:
    """Which heavy packages a Modbus-only agent has loaded, two ways.

    `modules`: the issue's command, `import edge_agent.app` only. The Modbus driver is
    imported lazily (drivers/registry.py), so this shows what the agent loads before it
    knows its config. `running`: the same once the drivers of a Modbus-only config are
    built, which is what the running agent holds.
    """

    modules: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    running_total: int = 0  # every module, for scale
    error: str = ""

    @staticmethod
    def packages(modules: list[str]) -> dict[str, int]:
        return {p: sum(1 for m in modules if m.split(".")[0] == p) for p in HEAVY}

    @property
    def clean(self) -> bool:
        """No OPC UA stack and no numpy, either way."""
        both = self.modules + self.running
        return not self.error and not any(m.split(".")[0] in ("asyncua", "numpy") for m in both)


def import_check(config: Path) -> ImportCheck:
    def run(argv: list[str]) -> str:
        proc = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError((proc.stderr.strip().splitlines() or ["?"])[-1])
        return proc.stdout.strip()

    try:
        modules = ast.literal_eval(run([PY, "-c", IMPORT_CHECK]))
        running = json.loads(run([PY, "-c", IMPORT_RUNNING, str(config)]))
    except (RuntimeError, ValueError, SyntaxError) as err:
        return ImportCheck(error=str(err))
    return ImportCheck(modules, running["heavy"], running["total"])
