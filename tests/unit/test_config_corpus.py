"""The bad-config corpus: every mistake is reported where it stands, with advice, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.cli import main

CASES = sorted(
    p for p in (Path(__file__).parents[1] / "cases" / "bad-config").iterdir() if p.is_dir()
)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_config(
    case: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(case)
    monkeypatch.delenv("EDGE_AGENT_TEST_UNSET", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["check", "config.yaml"])
    assert exit_.value.code == 2
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert lines[-1].startswith("config.yaml: ")
    assert "nothing was started" in lines[-1]
    assert lines[:-1] == (case / "expected.txt").read_text().splitlines()
    assert out.out == ""


def test_corpus_covers_the_required_mistakes() -> None:
    names = {c.name for c in CASES}
    required = {
        "unknown-key",
        "wrong-type",
        "bad-duration",
        "duplicate-device",
        "duplicate-point",
        "unknown-data-type",
        "overlapping-points",
        "bit-out-of-range",
        "missing-secret-file",
        "unset-environment-variable",
        "error-in-included-file",
    }
    assert required <= names


def test_real_process_prints_no_traceback_and_exits_2() -> None:
    case = next(c for c in CASES if c.name == "unknown-key")
    proc = subprocess.run(
        [sys.executable, "-m", "edge_agent", "check", "config.yaml"],
        cwd=case,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "did you mean 'address'?" in proc.stderr


def test_unreadable_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["check", str(tmp_path / "nope.yaml")])
    assert exit_.value.code == 2
    assert "cannot read" in capsys.readouterr().err
