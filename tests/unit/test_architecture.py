"""The one-way data flow, kept mechanically: stages do not import each other.

drivers -> readings <- pipeline -> buffer <- publisher (+ mqtt_io); only app.py (and the CLI)
wire them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "edge_agent"

# module (or package) -> the edge_agent modules it must never import
FORBIDDEN = {
    "drivers": {"buffer", "publisher", "mqtt_io", "pipeline", "app", "runner", "meta"},
    "buffer": {"drivers", "publisher", "mqtt_io", "pipeline", "app", "runner", "config"},
    "publisher": {"drivers", "pipeline", "runner", "app"},
    "mqtt_io": {"drivers", "buffer", "publisher", "pipeline", "runner", "app"},
    "pipeline": {"drivers", "buffer", "publisher", "mqtt_io", "runner", "app"},
    "runner": {"buffer", "publisher", "mqtt_io", "pipeline", "app", "config"},
    "config": {"drivers", "buffer", "publisher", "mqtt_io", "pipeline", "runner", "app"},
    "readings": {
        "drivers",
        "buffer",
        "publisher",
        "mqtt_io",
        "pipeline",
        "runner",
        "app",
        "config",
    },
    "indicators": {"drivers", "buffer", "publisher", "mqtt_io", "pipeline", "runner", "app"},
}


def edge_imports(path: Path) -> set[str]:
    """First-level edge_agent submodules that `path` imports (absolute or relative)."""
    rel = path.relative_to(PKG.parent).with_suffix("").parts  # ("edge_agent", "drivers", ...)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[: len(rel) - node.level])
                parts = base + (node.module.split(".") if node.module else [])
                names = [parts] if node.module else [[*parts, a.name] for a in node.names]
            else:
                names = [(node.module or "").split(".")]
            for parts in names:
                if parts[:1] == ["edge_agent"] and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "edge_agent" and len(parts) > 1:
                    found.add(parts[1])
    return found


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_stage_does_not_import_other_stages(stage: str) -> None:
    target = PKG / stage
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    assert files
    for f in files:
        bad = (edge_imports(f) - {stage}) & FORBIDDEN[stage]
        assert not bad, f"{f.relative_to(PKG.parent)} imports {sorted(bad)}"


def test_modbus_only_config_loads_no_opcua_or_numpy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, edge_agent.app, edge_agent.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'asyncua', 'numpy'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
