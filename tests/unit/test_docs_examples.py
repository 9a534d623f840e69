"""The YAML examples in the README and docs/ are valid configs: the docs follow the code.

Examples stand alone (with gateway:) or are device lists; files they name (certificates,
secrets) do not exist here, so only 'not found' problems are tolerated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_agent.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HEAD = "gateway: {id: gw-docs, site: docs}\nmqtt: {url: 'mqtt://127.0.0.1:1883'}\n"


def examples() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)):
            if "gateway:" in block or block.lstrip().startswith("devices:"):
                out.append((f"{doc.name}#{i}", block))
    return out


@pytest.mark.parametrize(("where", "block"), examples(), ids=[w for w, _ in examples()])
def test_example_is_a_valid_config(where: str, block: str, tmp_path: Path) -> None:
    text = block if "gateway:" in block else HEAD + block
    text = text.replace("include: devices/*.yaml", "")
    config = tmp_path / "example.yaml"
    config.write_text(text)
    try:
        load_config(config, env={"MQTT_PASSWORD": "x"})
    except ConfigError as err:
        real = [p for p in err.problems if "not found" not in p.message]
        assert not real, "\n".join(str(p) for p in real)


def test_there_are_examples_to_check() -> None:
    assert len(examples()) >= 3
