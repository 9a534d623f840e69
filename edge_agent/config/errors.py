"""pydantic's validation errors -> one-line problems a technician can act on: the key path
where the mistake stands, did-you-mean for an unknown key, the allowed choices, PLC synonyms
(float -> float32), and what was given."""

from __future__ import annotations

import difflib
import typing
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from .models import Config
from .yamlpos import Path_, Pos, Problem


class Locator(Protocol):
    def locate(self, path: Path_, *, key: bool = False) -> tuple[Pos | None, str]: ...


def translate(err: ValidationError, data: Any, sources: Locator) -> list[Problem]:
    """Each of pydantic's errors as a Problem where it stands in the YAML, in words."""
    out: list[Problem] = []
    for e in err.errors(include_url=False):
        path = _real_path(e["loc"], data)
        kind = e["type"]
        if kind == "extra_forbidden":
            key = str(e["loc"][-1])
            pos, where = sources.locate(path, key=True)
            msg = f"unknown key '{key}'"
            allowed = _fields_at(Config, e["loc"][:-1])
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            msg += (
                f"; did you mean '{close[0]}'?"
                if close
                else (f"; allowed here: {', '.join(allowed)}" if allowed else "")
            )
        elif kind == "missing":
            pos, where = sources.locate(path)  # the enclosing mapping's position
            msg = f"missing required key '{e['loc'][-1]}'"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            pos, where = sources.locate((*path, str(e["ctx"]["discriminator"]).strip("'")))
            msg = _message(e)
        else:
            pos, where = sources.locate(path)
            msg = _message(e)
        out.append(Problem(pos, where, msg))
    return out


def _real_path(loc: tuple[Any, ...], data: Any) -> Path_:
    """The part of a pydantic error location that exists in the data (drops union tags)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and part in (node.get("kind"), node.get("protocol")):
            continue  # the tag pydantic puts in the location of a tagged union's member
        elif isinstance(node, dict) and part == loc[-1]:
            path.append(part)  # a missing or unknown key
            break
    return tuple(path)


def _message(e: Any) -> str:
    kind, msg, given = e["type"], e["msg"], e.get("input")
    if kind in ("value_error", "assertion_error"):
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "literal_error":
        expected = [
            x.strip().strip("'") for x in e["ctx"]["expected"].replace(" or ", ", ").split(",")
        ]
        text = f"'{given}' is not one of: {', '.join(expected)}"
        close = [_SYNONYMS[str(given).lower()]] if str(given).lower() in _SYNONYMS else []
        close = close or difflib.get_close_matches(str(given), expected, n=1, cutoff=0.5)
        return text + (f"; did you mean '{close[0]}'?" if close else "")
    if kind == "string_pattern_mismatch":
        if "a-z0-9-" in e["ctx"]["pattern"] and "A-Z" not in e["ctx"]["pattern"]:
            return f"'{given}' is not valid here: use lowercase letters, digits and '-'"
        return f"'{given}' is not a valid name: use letters, digits, '_', '.' and '-' only"
    if kind in ("model_type", "dict_type"):
        return f"expected a mapping of keys here, got {_show(given)}"
    if kind == "union_tag_invalid":
        what = str(e["ctx"]["discriminator"]).strip("'")
        tags = [t.strip().strip("'") for t in e["ctx"]["expected_tags"].split(",")]
        close = difflib.get_close_matches(str(e["ctx"]["tag"]), tags, n=1, cutoff=0.5)
        return f"unknown {what} '{e['ctx']['tag']}': use one of {', '.join(tags)}" + (
            f"; did you mean '{close[0]}'?" if close else ""
        )
    if kind == "union_tag_not_found":
        what = str(e["ctx"]["discriminator"]).strip("'")
        return f"missing required key '{what}'"
    if kind == "too_short":
        return f"needs at least {e['ctx']['min_length']} item(s); this one is empty"
    if kind == "list_type":
        return f"expected a list (lines starting with '- '), got {_show(given)}"
    return f"{msg[0].lower()}{msg[1:]}, got {_show(given)}"


# What PLC manuals and other gateways call our data types.
_SYNONYMS = {
    "float": "float32",
    "real": "float32",
    "double": "float64",
    "lreal": "float64",
    "int": "int16",
    "word": "uint16",
    "dword": "uint32",
    "dint": "int32",
    "udint": "uint32",
    "lint": "int64",
    "ulint": "uint64",
    "uint": "uint16",
    "boolean": "bool",
    "str": "string",
    "holding_register": "holding",
    "input_register": "input",
    "coils": "coil",
    "discrete_input": "discrete",
}


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Names of the keys allowed at pydantic location `loc` (for did-you-mean), or [] when it
    is not a model. A tagged union's member is picked by the tag pydantic puts in `loc`."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            models = _models_in(current)
            tagged = [m for m in models if _tag(m) == part]
            if tagged:
                current = tagged[0]
                continue
            if len(models) != 1:
                return []
            current = models[0]
        info = current.model_fields.get(part)
        if info is None:
            return []
        current = info.annotation
    models = _models_in(current)
    return list(models[0].model_fields) if len(models) == 1 else []


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("kind") or model.model_fields.get("protocol")
    args = typing.get_args(field.annotation) if field else ()
    return args[0] if len(args) == 1 else None
