"""Checks across fields and across points: each finding names the exact key it is about."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from pydantic import ValidationError

from .models import Config, ModbusPoint, ModbusTcpDevice
from .opcua import OpcUaDevice

Key = tuple[str | int, ...]


class Finding(NamedTuple):
    path: Key
    message: str
    also: Key | None = None  # the other place, for duplicates and overlaps


def _under(prefix: Key, findings: Iterable[Finding]) -> Iterator[Finding]:
    for f in findings:
        also = (*prefix, *f.also) if f.also is not None else None
        yield Finding((*prefix, *f.path), f.message, also)


def check(cfg: Config) -> Iterator[Finding]:
    m = cfg.mqtt
    try:
        formatted = cfg.prefix()
    except (KeyError, IndexError, ValueError):
        yield Finding(
            ("mqtt", "topic_prefix"),
            f"'{m.topic_prefix}': only {{site}} and "
            "{gateway} can be replaced in the topic prefix",
        )
    else:
        if (
            any(c in formatted for c in "+#\0")
            or formatted.startswith("/")
            or formatted.endswith("/")
        ):
            yield Finding(
                ("mqtt", "topic_prefix"),
                f"'{m.topic_prefix}': a topic prefix may not "
                "contain + or # nor start or end with /",
            )
    if m.password is not None and m.password_file is not None:
        yield Finding(("mqtt", "password_file"), "give either password or password_file, not both")
    if (m.password or m.password_file) and not m.username:
        yield Finding(("mqtt",), "a password needs a username: add mqtt.username")
    if m.tls is not None and not m.tls_enabled:
        yield Finding(("mqtt", "tls"), "TLS settings need an mqtts:// URL: change mqtt.url")
    if m.tls and (m.tls.cert_file is None) != (m.tls.key_file is None):
        yield Finding(("mqtt", "tls"), "mutual TLS needs both cert_file and key_file")
    if m.reconnect_delay > m.reconnect_delay_max:
        yield Finding(("mqtt", "reconnect_delay"), "must not exceed reconnect_delay_max")
    yield from check_devices(cfg.devices)


def check_devices(devices: list[Any]) -> Iterator[Finding]:
    """Devices may be validated models or, when the config as a whole did not validate, raw
    mappings: the checks then run on whatever parts validate, so one run reports everything."""
    yield from _duplicates([_name(d) for d in devices], "device", "devices")
    for i, dev in enumerate(devices):
        if isinstance(dev, OpcUaDevice):
            yield from _under(("devices", i), _opcua_device(dev))
            continue
        if isinstance(dev, dict) and dev.get("protocol") == "opcua":
            try:
                valid = OpcUaDevice.model_validate(dev)
            except ValidationError:
                continue  # reported by the whole-config validation
            yield from _under(("devices", i), _opcua_device(valid))
            continue
        if not isinstance(dev, ModbusTcpDevice):
            try:
                dev = ModbusTcpDevice.model_validate(dev)
            except ValidationError:
                yield from _under(("devices", i), _raw_points(dev))
                continue
        yield from _under(("devices", i), _device(dev))


def _opcua_device(dev: OpcUaDevice) -> Iterator[Finding]:
    yield from _duplicates([p.name for p in dev.points], "point", "points")
    for i, point in enumerate(dev.points):
        if point.mode == "poll":
            for key in ("sampling_interval", "queue_size", "deadband"):
                if key in point.model_fields_set:
                    yield Finding(
                        ("points", i, key),
                        f"{key} is for mode: subscribe; a polled point is read every "
                        "poll_interval: remove it, or subscribe to the point",
                    )
    sec = dev.security
    for key in ("certificate", "private_key", "trusted_servers"):
        path = getattr(sec, key)
        if path is not None and not path.exists():
            yield Finding(
                ("security", key),
                f"{path} not found: "
                + (
                    "make it with: edge-agent certs opcua --out DIR"
                    if key != "trusted_servers"
                    else "create the directory and copy the server's certificate into it"
                ),
            )
    if (
        sec.certificate
        and sec.private_key
        and sec.certificate.is_file()
        and sec.private_key.is_file()
    ):
        from ..pki import KeyPairError, load_key_pair  # cryptography: only for secured devices

        try:
            load_key_pair(sec.certificate, sec.private_key)
        except KeyPairError as err:
            yield Finding(("security", err.key), str(err))
    if dev.password is not None and dev.password_file is not None:
        yield Finding(("password_file",), "give either password or password_file, not both")
    if (dev.password or dev.password_file) and not dev.username:
        yield Finding((), "a password needs a username: add username")
    yield from _indicators(dev)


def _name(item: Any) -> Any:
    return item.get("name") if isinstance(item, dict) else getattr(item, "name", None)


def _duplicates(names: list[Any], what: str, key: str) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if not isinstance(name, str):
            continue
        if name in seen:
            yield Finding(
                (key, i, "name"),
                f"duplicate {what} name '{name}': {what} names must be unique",
                (key, seen[name], "name"),
            )
        else:
            seen[name] = i


def _raw_points(dev: Any) -> Iterator[Finding]:
    points = dev.get("points") if isinstance(dev, dict) else None
    if not isinstance(points, list):
        return
    yield from _duplicates([_name(p) for p in points], "point", "points")
    valid: list[ModbusPoint] = []
    for j, raw in enumerate(points):
        try:
            pt = ModbusPoint.model_validate(raw)
        except ValidationError:
            continue
        valid.append(pt)
        yield from _under(("points", j), _point(pt))
    if len(valid) == len(points):
        yield from _overlaps(valid)


def _device(dev: ModbusTcpDevice) -> Iterator[Finding]:
    if dev.timeout > dev.poll_interval:
        yield Finding(
            ("timeout",),
            f"timeout ({dev.timeout:g}s) is longer than poll_interval "
            f"({dev.poll_interval:g}s): lower timeout or raise poll_interval",
        )
    if dev.reconnect_delay > dev.reconnect_delay_max:
        yield Finding(("reconnect_delay",), "must not exceed reconnect_delay_max")
    yield from _duplicates([p.name for p in dev.points], "point", "points")
    for j, pt in enumerate(dev.points):
        yield from _under(("points", j), _point(pt))
    yield from _overlaps(dev.points)
    yield from _indicators(dev)


def _indicators(dev: ModbusTcpDevice | OpcUaDevice) -> Iterator[Finding]:
    points = {p.name: p for p in dev.points}
    yield from _duplicates([i.name for i in dev.indicators], "indicator", "indicators")
    for j, ind in enumerate(dev.indicators):
        at = ("indicators", j)
        source = points.get(ind.source)
        if source is None:
            close = difflib.get_close_matches(ind.source, list(points), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; points: {', '.join(points)}"
            yield Finding((*at, "source"), f"no point named '{ind.source}' in this device{hint}")
            continue
        modbus = isinstance(dev, ModbusTcpDevice)
        if ind.kind == "vibration" and modbus:
            yield Finding(
                (*at, "source"),
                f"'{ind.source}' is a single value: a vibration "
                "indicator needs a waveform (an array point, e.g. from OPC UA); for a "
                "transmitter's overall velocity use kind iso_zone",
            )
        dtype = getattr(source, "dtype", None)
        if dtype == "string":
            yield Finding((*at, "source"), f"'{ind.source}' is a string: indicators need numbers")
        speed = getattr(ind, "shaft_speed", None)
        if isinstance(speed, str) and speed not in points:
            yield Finding((*at, "shaft_speed"), f"no point named '{speed}' in this device")
        if (
            ind.kind == "threshold"
            and ind.high is not None
            and ind.low is not None
            and (ind.low >= ind.high)
        ):
            yield Finding((*at, "low"), f"low ({ind.low:g}) must be below high ({ind.high:g})")
        if ind.kind == "running_hours" and modbus and dtype != "bool" and ind.running_above is None:
            yield Finding(
                (*at, "running_above"),
                f"'{ind.source}' is not a bool: say above "
                "which value the machine runs (running_above)",
            )


def _point(pt: ModbusPoint) -> Iterator[Finding]:
    bits_table = pt.table in ("coil", "discrete")
    if bits_table and pt.dtype != "bool":
        yield Finding(
            ("type",), f"the {pt.table} table holds single bits: use type bool (or leave type out)"
        )
        return
    if pt.bit is not None:
        if pt.dtype != "bool" or bits_table:
            yield Finding(("bit",), "bit applies to type bool in the holding or input table only")
        elif pt.bit > 15:
            yield Finding(("bit",), f"bit {pt.bit} out of range: a register has bits 0 to 15")
    if pt.dtype == "string" and pt.length is None:
        yield Finding(("type",), "a string point needs length: the number of characters to read")
    if pt.dtype != "string" and pt.length is not None:
        yield Finding(("length",), "length applies to type string only")
    if pt.scale == 0:
        yield Finding(("scale",), "scale 0 would make every value 0; use 1 for no scaling")
    elif pt.dtype in ("bool", "string") and (pt.scale != 1 or pt.offset != 0):
        yield Finding(("scale" if pt.scale != 1 else "offset",), f"a {pt.dtype} cannot be scaled")
    if pt.address + pt.width - 1 > 65535:
        yield Finding(("address",), f"{pt.dtype} at {pt.address} runs past the last address 65535")


def _overlaps(points: list[ModbusPoint]) -> Iterator[Finding]:
    """Two points may share a register only as two different bits of it."""
    by_table: dict[str, list[tuple[int, int, int, ModbusPoint]]] = {}
    for j, pt in enumerate(points):
        if pt.dtype == "string" and pt.length is None:
            continue
        by_table.setdefault(pt.table, []).append((pt.address, pt.address + pt.width - 1, j, pt))
    for table, spans in by_table.items():
        spans.sort(key=lambda s: (s[0], s[2]))
        for k, (start, end, j, pt) in enumerate(spans):
            for start2, end2, j2, pt2 in spans[k + 1 :]:
                if start2 > end:
                    break
                if pt.bit is not None and pt2.bit is not None and pt.bit != pt2.bit:
                    continue
                lo, hi = max(start, start2), min(end, end2)
                span = f"{lo}" if lo == hi else f"{lo}-{hi}"
                if pt.bit is not None and pt.bit == pt2.bit:
                    span += f" bit {pt.bit}"
                first, second = (j, j2) if j < j2 else (j2, j)
                yield Finding(
                    ("points", second, "address"),
                    f"'{points[second].name}' overlaps '{points[first].name}' at "
                    f"{table} {span}: fix the address or the type",
                    ("points", first, "address"),
                )
