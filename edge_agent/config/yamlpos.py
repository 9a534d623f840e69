"""YAML loading that remembers where every key and value stands.

PyYAML's safe loader throws positions away and silently keeps the last of two equal keys.
We compose the node graph ourselves so that every error can be reported as FILE:LINE:COL,
duplicate keys are refused, and `${VAR}` interpolation happens where the value stands.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class Pos:
    file: str
    line: int  # 1-based
    col: int  # 1-based


@dataclass(frozen=True, slots=True)
class Problem:
    pos: Pos | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.pos.file}:{self.pos.line}:{self.pos.col}: " if self.pos else ""
        path = f"{self.path}: " if self.path else ""
        return f"{where}{path}{self.message}"


@dataclass
class Located:
    """Plain Python data plus the position of each value and each mapping key."""

    data: Any
    values: dict[Path_, Pos]
    keys: dict[Path_, Pos]
    from_env: set[Path_]  # scalars that came (wholly) from a ${VAR}
    problems: list[Problem]


def _hint(problem: str) -> str:
    if (
        "block end" in problem
        or "mapping values are not allowed" in problem
        or ("expected" in problem and "indentation" not in problem)
    ):
        return (
            " (check the indentation of this line against the lines above: keys of one "
            "mapping, and the '- ' of one list, must line up; and put a space after each ':')"
        )
    if "tab" in problem:
        return " (YAML does not allow tabs for indentation: use spaces)"
    return ""


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load_located(file: Path, env: dict[str, str] | None = None) -> Located:
    """Parse one YAML file. Syntax errors come back as problems, never as exceptions."""
    env = dict(os.environ) if env is None else env
    name = str(file)
    loc = Located(None, {}, {}, set(), [])
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        loc.problems.append(Problem(None, "", f"{name}: cannot read: {err.strerror or err}"))
        return loc
    except UnicodeDecodeError as err:
        loc.problems.append(Problem(Pos(name, 1, 1), "", f"not UTF-8 text ({err.reason})"))
        return loc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        pos = Pos(name, mark.line + 1, mark.column + 1) if mark else None
        what = (err.problem or err.context or "invalid YAML").strip()
        loc.problems.append(Problem(pos, "", f"YAML syntax: {what}{_hint(what)}"))
        return loc
    except yaml.YAMLError as err:
        loc.problems.append(Problem(Pos(name, 1, 1), "", f"YAML syntax: {err}"))
        return loc
    finally:
        loader.dispose()
    if node is None:
        loc.data = {}
        return loc

    def pos_of(n: yaml.Node) -> Pos:
        return Pos(name, n.start_mark.line + 1, n.start_mark.column + 1)

    def build(n: yaml.Node, path: Path_) -> Any:
        loc.values[path] = pos_of(n)
        if isinstance(n, yaml.MappingNode):
            loader.flatten_mapping(n)
            out: dict[str, Any] = {}
            for knode, vnode in n.value:
                key = loader.construct_object(knode, deep=True)
                if not isinstance(key, str):
                    key = str(key)
                if key in out:
                    first = loc.keys[(*path, key)]
                    loc.problems.append(
                        Problem(
                            pos_of(knode),
                            dotted((*path, key)),
                            f"duplicate key '{key}' (first at line {first.line}); "
                            "remove one of them",
                        )
                    )
                    continue
                loc.keys[(*path, key)] = pos_of(knode)
                out[key] = build(vnode, (*path, key))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(n.value)]
        if isinstance(n, yaml.ScalarNode) and n.tag == "tag:yaml.org,2002:str" and "$" in n.value:
            return interpolate(n, path)
        return loader.construct_object(n, deep=True)

    def interpolate(n: yaml.ScalarNode, path: Path_) -> Any:
        raw = n.value
        missing: list[str] = []

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            var, default = m.group(1), m.group(2)
            if var in env:
                return env[var]
            if default is not None:
                return default
            missing.append(var)
            return ""

        value = _ENV.sub(sub, raw)
        for var in missing:
            loc.problems.append(
                Problem(
                    pos_of(n),
                    dotted(path),
                    f"environment variable {var} is not set: export it before starting "
                    f"the agent, or write ${{{var}:-default}}",
                )
            )
        if _ENV.fullmatch(raw.strip()) and raw.strip() != "$$":
            loc.from_env.add(path)
        # Kept as a string: the models convert "1883" to a port number where one is expected,
        # and a password made of digits stays a string.
        return value

    loc.data = build(node, ())
    return loc
