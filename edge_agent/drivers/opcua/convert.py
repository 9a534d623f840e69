"""asyncua DataValue -> (value, quality, error, ts_ms). Pure: no I/O, no event loop.

Quality follows the StatusCode's severity bits: Good -> good (error None); Uncertain* -> uncertain,
the value kept and the status name as error; Bad* -> bad, value None, the status name as error
(e.g. "BadSensorFailure"). Values become what a JSON payload can carry: arrays -> lists,
DateTime -> epoch ms, ByteString -> base64 text, Float -> the shortest decimal that is the same
float32 (3.14, not 3.140000104904175). A NaN or infinite scalar is a bad reading
("not_a_number", "infinite"), as in the Modbus driver, and so is a Null value
("no_value"): a value of None never travels as good. The timestamp is the server's
SourceTimestamp, else its ServerTimestamp, else the time of the read.

Also here, as pure functions of the config: node id text -> NodeId, browse path text ->
RelativePath, deadband -> DataChangeFilter.
"""

from __future__ import annotations

import base64
import math
import struct
import uuid
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from asyncua import ua
from asyncua.ua import status_codes

from ...readings import Quality

_SEVERITY = 0xC000_0000
_CODE_BITS = 0xFFFF_0000  # the low 16 bits are info bits (overflow, limits), not the code
_F32 = struct.Struct("<f")
_VT = ua.VariantType
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def status_name(code: int) -> str:
    """The symbolic name of a status code ("BadNodeIdUnknown"), ignoring its info bits."""
    name, _ = status_codes.get_name_and_doc(code & _CODE_BITS)
    if name in ("Good", "Uncertain", "Bad") and code & _CODE_BITS:
        return f"{name}_0x{code:08X}"  # a vendor code asyncua does not know
    return name


def quality_of(code: int) -> tuple[Quality, str | None]:
    severity = code & _SEVERITY
    if severity == 0:
        return Quality.GOOD, None
    if severity == 0x4000_0000:
        return Quality.UNCERTAIN, status_name(code)
    return Quality.BAD, status_name(code)  # 10 and the reserved 11 are both bad (Part 4 7.39)


def epoch_ms(dt: datetime) -> int:
    """datetime (aware, or naive meaning UTC as asyncua writes them) -> epoch milliseconds."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _MS  # exact: no float rounding


def shortest_float32(value: float) -> float:
    """The shortest decimal that packs to the same float32 as `value`."""
    if not math.isfinite(value):
        return value
    exact = _F32.pack(value)
    for digits in (7, 8):
        candidate = float(f"{value:.{digits}g}")
        if _F32.pack(candidate) == exact:
            return candidate
    return value


def to_python(value: Any, vtype: Any = None) -> Any:
    """One OPC UA value (or array, nested for matrices) -> a JSON-friendly Python value."""
    if isinstance(value, list | tuple):
        return [to_python(v, vtype) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        dtype = getattr(value, "dtype", None)
        if dtype is not None and dtype.kind == "f" and dtype.itemsize == 4:
            vtype = _VT.Float
        return to_python(value.tolist(), vtype)
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, float):
        if vtype == _VT.Float:
            return shortest_float32(value)
        return value
    if isinstance(value, datetime):
        return epoch_ms(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, ua.LocalizedText):
        return value.Text
    if isinstance(value, ua.NodeId | ua.QualifiedName):
        return value.to_string()
    if isinstance(value, ua.StatusCode):
        return status_name(value.value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)  # structures, XmlElement, ...: readable rather than lost


def _finite(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "not_a_number" if value != value else "infinite"
    return None


def convert(dv: ua.DataValue, now: int) -> tuple[Any, Quality, str | None, int]:
    """DataValue -> (value, quality, error, ts_ms); `now` (epoch ms) is the last-resort ts."""
    code = dv.StatusCode.value if dv.StatusCode is not None else 0
    quality, err = quality_of(code)
    stamp = dv.SourceTimestamp or dv.ServerTimestamp
    ts = epoch_ms(stamp) if stamp is not None else now
    if quality is Quality.BAD:
        return None, quality, err, ts
    variant = dv.Value
    if variant is None or variant.Value is None:  # a Good status with no value to go with it
        return None, Quality.BAD, err or "no_value", ts
    value = to_python(variant.Value, variant.VariantType)
    bad = _finite(value)
    if bad is not None:
        return None, Quality.BAD, bad, ts
    return value, quality, err, ts


def parse_node(text: str) -> ua.NodeId:
    """A configured node id -> NodeId; "nsu=URI;..." gives an ExpandedNodeId whose namespace
    index the driver looks up on the server. Raises ValueError for malformed text."""
    try:
        return ua.NodeId.from_string(text)
    except (ua.UaError, ValueError, IndexError) as err:
        raise ValueError(f"'{text}' is not a node id: {err}") from err


def relative_path(path: str) -> ua.RelativePath:
    """ "0:Objects/2:Motor7/2:BearingTemp" -> a RelativePath from the Root folder following
    hierarchical references. Split by hand rather than through the BNF parser so that names
    with '.', '#' or '!' need no escaping; a name without "ns:" is in namespace 0."""
    elements = []
    for part in path.strip().strip("/").split("/"):
        ns, sep, name = part.partition(":")
        if not sep or not ns.isdigit():
            ns, name = "0", part
        elements.append(
            ua.RelativePathElement(
                ReferenceTypeId=ua.NodeId(ua.ObjectIds.HierarchicalReferences),
                IsInverse=False,
                IncludeSubtypes=True,
                TargetName=ua.QualifiedName(name, int(ns)),
            )
        )
    return ua.RelativePath(Elements=elements)


def deadband_filter(deadband: float | str | None) -> ua.DataChangeFilter | None:
    """0.2 -> Absolute 0.2; "2%" -> Percent 2 (of the node's EURange); None -> no filter."""
    if deadband is None:
        return None
    if isinstance(deadband, str):
        kind, value = ua.DeadbandType.Percent, float(deadband.strip().rstrip("%"))
    else:
        kind, value = ua.DeadbandType.Absolute, float(deadband)
    return ua.DataChangeFilter(
        Trigger=ua.DataChangeTrigger.StatusValue, DeadbandType=kind, DeadbandValue=value
    )


def within_deadband(band: float, old: Any, new: Any) -> bool:
    """True when `new` differs from `old` by no more than `band` (OPC UA Part 8, 6.2: an
    array passes when any element moved more, or when its length changed). What is not a
    number, or not the same shape, always passes."""
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(
            within_deadband(band, a, b) for a, b in zip(old, new, strict=True)
        )
    numbers = (int, float)
    if not isinstance(old, numbers) or not isinstance(new, numbers):
        return False
    if isinstance(old, bool) or isinstance(new, bool):
        return old == new
    return abs(new - old) <= band
