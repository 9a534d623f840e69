"""Load a config file (and its includes) into a validated `Config`, or a list of problems.

Every problem is reported as FILE:LINE:COL: key.path: message, in the file where the key
stands (an included file too), so a technician can fix it without reading code.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from .checks import Finding, check, check_devices
from .errors import translate
from .models import Config
from .yamlpos import Located, Path_, Pos, Problem, dotted, load_located


class ConfigError(Exception):
    """The config cannot be used; `problems` says every reason, each where it stands."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the configuration")
        self.problems = problems


@dataclass
class Loaded:
    config: Config
    file: Path
    files: list[Path] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # key path -> where it came from


@dataclass
class _Sources:
    """Maps a path in the merged data back to the file, position and local path it came from."""

    main: Located
    devices: list[tuple[Located, int]] = field(default_factory=list)

    def locate(self, path: Path_, *, key: bool = False) -> tuple[Pos | None, str]:
        src, local = self.main, path
        device = path[1] if len(path) >= 2 and path[0] == "devices" else None
        if isinstance(device, int) and device < len(self.devices):
            src, k = self.devices[device]
            local = ("devices", k, *path[2:])
        probe = local
        while True:
            pos = (src.keys.get(probe) if key else None) or src.values.get(probe)
            if pos is not None or not probe:
                return pos, dotted(local)
            probe = probe[:-1]


def load_config(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Loaded:
    file = Path(path)
    main = load_located(file, env)
    problems = list(main.problems)
    if main.data is None:  # unreadable, or not YAML: nothing more can be checked
        raise ConfigError(problems)
    data = main.data
    if not isinstance(data, dict):
        raise ConfigError(
            [
                Problem(
                    main.values.get(()),
                    "",
                    "the config must be a mapping of keys (gateway:, mqtt:, devices:)",
                )
            ]
        )
    sources = _Sources(main)
    devices = data.get("devices", [])
    if devices is None:
        devices = data["devices"] = []
    if isinstance(devices, list):
        sources.devices = [(main, k) for k in range(len(devices))]
    files = [file]
    if isinstance(devices, list):
        for inc_file in _include_files(data.get("include"), file.parent, main, problems):
            inc = load_located(inc_file, env)
            files.append(inc_file)
            problems.extend(inc.problems)
            if inc.data is None:
                continue
            extra = inc.data.get("devices") if isinstance(inc.data, dict) else None
            if (
                not isinstance(inc.data, dict)
                or set(inc.data) - {"devices"}
                or not isinstance(extra, list)
            ):
                problems.append(
                    Problem(
                        Pos(str(inc_file), 1, 1),
                        "",
                        "an included file holds only a 'devices:' list",
                    )
                )
                continue
            sources.devices.extend((inc, k) for k in range(len(extra)))
            devices.extend(extra)

    mqtt = data.get("mqtt")
    if isinstance(mqtt, dict) and "password" in mqtt and ("mqtt", "password") not in main.from_env:
        pos, where = sources.locate(("mqtt", "password"))
        problems.append(Problem(pos, where, _literal_password("MQTT_PASSWORD")))
    _resolve_paths(data, file.parent)
    if isinstance(devices, list):
        for i, dev in enumerate(devices):
            src, k = sources.devices[i]
            if isinstance(dev, dict):
                # A device's files are relative to the file the device stands in.
                _resolve_paths(dev, Path(src.values[()].file).parent, _DEVICE_PATH_KEYS)
                if "password" in dev and ("devices", k, "password") not in src.from_env:
                    pos, where = sources.locate(("devices", i, "password"))
                    name = str(dev.get("name") or "device").upper()
                    variable = re.sub(r"[^A-Z0-9]+", "_", name) + "_PASSWORD"
                    problems.append(Problem(pos, where, _literal_password(variable)))

    try:
        cfg = Config.model_validate(data)
    except ValidationError as err:
        problems.extend(translate(err, data, sources))
        if isinstance(data.get("devices"), list):
            problems.extend(_placed(check_devices(data["devices"]), sources))
        raise ConfigError(_sorted(problems)) from None

    problems.extend(_placed(check(cfg), sources))
    cfg, secrets = _read_secrets(cfg, sources, problems)
    if problems:
        raise ConfigError(_sorted(problems))
    return Loaded(cfg, file, files, secrets)


def _placed(findings: Iterable[Finding], sources: _Sources) -> Iterator[Problem]:
    for f in findings:
        pos, where = sources.locate(f.path)
        message = f.message
        if f.also is not None:
            other, _ = sources.locate(f.also)
            if other is not None:
                same = pos is not None and other.file == pos.file
                message += (
                    f" (the other one is at {'line ' if same else other.file + ':'}{other.line})"
                )
        yield Problem(pos, where, message)


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(
        problems, key=lambda p: (p.pos.file, p.pos.line, p.pos.col) if p.pos else ("", 0, 0)
    )


def _include_files(spec: Any, base: Path, main: Located, problems: list[Problem]) -> list[Path]:
    if spec is None:
        return []
    patterns = [spec] if isinstance(spec, str) else spec if isinstance(spec, list) else []
    out: list[Path] = []
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            continue  # the model reports the wrong type
        matches = sorted(glob.glob(str(base / pattern)))
        if not matches and not glob.has_magic(pattern):
            path = ("include",) if isinstance(spec, str) else ("include", i)
            problems.append(
                Problem(
                    main.values.get(path),
                    dotted(path),
                    f"included file {base / pattern} does not exist",
                )
            )
        out.extend(Path(m) for m in matches)
    return out


_PATH_KEYS: tuple[Path_, ...] = (
    ("mqtt", "password_file"),
    ("mqtt", "tls", "ca_file"),
    ("mqtt", "tls", "cert_file"),
    ("mqtt", "tls", "key_file"),
    ("buffer", "path"),
)


_DEVICE_PATH_KEYS: tuple[Path_, ...] = (
    ("password_file",),
    ("security", "certificate"),
    ("security", "private_key"),
    ("security", "trusted_servers"),
)


def _literal_password(variable: str) -> str:
    return (
        "a literal password would travel with the config: put it in a file (password_file) or "
        f'write password: "${{{variable}}}"'
    )


def _resolve_paths(
    data: dict[str, Any], base: Path, keys_list: tuple[Path_, ...] = _PATH_KEYS
) -> None:
    """Relative file names in the config are relative to the config file, not to the cwd."""
    for keys in keys_list:
        node: Any = data
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(keys[-1]), str):
            value = os.path.expanduser(node[keys[-1]])
            node[keys[-1]] = str(base / value) if not os.path.isabs(value) else value


def _read_secret_file(
    path: Path, key: Path_, sources: _Sources, problems: list[Problem]
) -> str | None:
    """The one line of a password file, or None with the problem recorded at `key`."""
    pos, where = sources.locate(key)
    try:
        secret = path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        problems.append(
            Problem(
                pos,
                where,
                f"secret file {path} not found: create it (one line, chmod 600) or fix the path",
            )
        )
        return None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or err
        problems.append(Problem(pos, where, f"cannot read secret file {path}: {reason}"))
        return None
    if not secret:
        problems.append(Problem(pos, where, f"secret file {path} is empty"))
    return secret


def _read_secrets(
    cfg: Config, sources: _Sources, problems: list[Problem]
) -> tuple[Config, dict[str, str]]:
    secrets: dict[str, str] = {}
    m = cfg.mqtt
    if m.password is not None:
        secrets["mqtt.password"] = "from the environment"
    for key in ("ca_file", "cert_file", "key_file"):
        f = getattr(m.tls, key, None) if m.tls else None
        if f is not None and not f.is_file():
            pos, where = sources.locate(("mqtt", "tls", key))
            problems.append(
                Problem(pos, where, f"file {f} not found: copy it there or fix the path")
            )
    if m.password_file is not None:
        secret = _read_secret_file(m.password_file, ("mqtt", "password_file"), sources, problems)
        if secret is not None:
            secrets["mqtt.password"] = f"from file {m.password_file}"
            mqtt = m.model_copy(update={"password": SecretStr(secret)})
            cfg = cfg.model_copy(update={"mqtt": mqtt})
    elif (
        m.password is not None
        and not m.password.get_secret_value()
        and not any(p.path == "mqtt.password" for p in problems)
    ):
        pos, where = sources.locate(("mqtt", "password"))
        problems.append(
            Problem(
                pos,
                where,
                "the password is empty: set the environment "
                "variable, or leave username and password out",
            )
        )
    devices = list(cfg.devices)
    for i, dev in enumerate(devices):
        pw_file = getattr(dev, "password_file", None)
        if pw_file is None:
            if getattr(dev, "password", None) is not None:
                secrets[f"{dev.name}.password"] = "from the environment"
            continue
        secret = _read_secret_file(pw_file, ("devices", i, "password_file"), sources, problems)
        if secret is not None:
            secrets[f"{dev.name}.password"] = f"from file {pw_file}"
            devices[i] = dev.model_copy(update={"password": SecretStr(secret)})
    if devices != list(cfg.devices):
        cfg = cfg.model_copy(update={"devices": devices})
    return cfg, secrets
