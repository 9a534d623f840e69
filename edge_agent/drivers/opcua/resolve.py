"""Where a device's points are on the server: node ids and browse paths resolved to NodeIds
once per session, each checked readable by this user, with the deadband of subscribed points
in the node's units. A point that fails gets a status name (`error`) and reads bad; the rest
of the device goes on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asyncua import Client, ua

from ...config.opcua import OpcUaDevice, OpcUaPoint
from .convert import parse_node, relative_path, status_name

_LIMITS = (  # Server.ServerCapabilities.OperationLimits: 0 or absent means no limit
    ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
    ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
)
_CURRENT_READ = int(ua.AccessLevelType.CurrentRead)


@dataclass(slots=True)
class Resolved:
    point: OpcUaPoint
    node: ua.NodeId | None = None
    error: str | None = None  # a status name: the point reads bad with it on every poll
    why: str = ""  # for the operator, when the status name does not say it all
    band: float | None = None  # the deadband in the node's units, for subscribed points


@dataclass(frozen=True, slots=True)
class Resolution:
    points: list[Resolved]  # in config order
    max_read: int  # the server's MaxNodesPerRead (0: no limit)
    max_items: int  # its MaxMonitoredItemsPerCall (0: no limit)
    reads: int  # Read requests sent


def value_of(dv: ua.DataValue) -> Any:
    """The value of a good DataValue, else None."""
    if dv.StatusCode is not None and not dv.StatusCode.is_good():
        return None
    return dv.Value.Value if dv.Value is not None else None


async def resolve(client: Client, device: OpcUaDevice) -> Resolution:
    """Node ids and browse paths -> NodeIds, checked readable, with their deadbands in the
    nodes' units and the server's operation limits: five requests at most."""
    points = [Resolved(p) for p in device.points]
    namespaces: list[str] | None = None
    by_path: list[Resolved] = []
    for r in points:
        if r.point.browse_path is not None:
            by_path.append(r)
            continue
        try:
            node = parse_node(r.point.node or "")
        except ValueError:
            r.error = "BadNodeIdInvalid"
            continue
        if isinstance(node, ua.ExpandedNodeId) and node.NamespaceUri:
            if namespaces is None:
                namespaces = await client.get_namespace_array()
            if node.NamespaceUri not in namespaces:
                r.error = "BadNodeIdUnknown"
                r.why = f"namespace {node.NamespaceUri} is not on the server"
                continue
            ns = namespaces.index(node.NamespaceUri)
            node = ua.NodeId(node.Identifier, ns, node.NodeIdType)
        r.node = node
    if by_path:
        root = ua.NodeId(ua.ObjectIds.RootFolder)
        results = await client.uaclient.translate_browsepaths_to_nodeids(
            [ua.BrowsePath(root, relative_path(r.point.browse_path or "")) for r in by_path]
        )
        for r, res in zip(by_path, results, strict=True):
            if not res.StatusCode.is_good():
                r.error = status_name(res.StatusCode.value)
                continue
            if not res.Targets:
                r.error = "BadNoMatch"
                continue
            t = res.Targets[0].TargetId
            r.node = ua.NodeId(t.Identifier, t.NamespaceIndex, t.NodeIdType)
    max_read, max_items = await _check_readable(client, [r for r in points if r.error is None])
    reads = 2 if await _deadbands(client, points) else 1
    return Resolution(points, max_read, max_items, reads)


async def _check_readable(client: Client, points: list[Resolved]) -> tuple[int, int]:
    """Marks points the user cannot read; returns the server's (MaxNodesPerRead,
    MaxMonitoredItemsPerCall), 0 for no limit."""
    ids = [ua.ReadValueId(r.node, ua.AttributeIds.UserAccessLevel) for r in points]
    ids += [ua.ReadValueId(ua.NodeId(i), ua.AttributeIds.Value) for i in _LIMITS]
    values = await client.uaclient.read(ua.ReadParameters(NodesToRead=ids))
    for r, dv in zip(points, values, strict=False):
        code = dv.StatusCode.value if dv.StatusCode else 0
        if code & 0x8000_0000:
            r.error = status_name(code)
        elif not int(value_of(dv) or 0) & _CURRENT_READ:
            r.error = "BadNotReadable"
    limits = [int(value_of(dv) or 0) for dv in values[len(points) :]]
    max_read, max_items = [*limits, 0, 0][:2]
    return max_read, max_items


async def _deadbands(client: Client, points: list[Resolved]) -> bool:
    """A deadband in the node's units for every subscribed point that has one. A percent
    deadband is a percentage of the node's EURange property: without one, the point
    is refused here rather than by the server (some servers ignore it silently). True if
    a Read was sent."""
    for r in points:
        if (
            r.error is None
            and r.point.mode == "subscribe"
            and isinstance(r.point.deadband, float | int)
        ):
            r.band = float(r.point.deadband)
    percent = [
        r
        for r in points
        if r.error is None and r.point.mode == "subscribe" and isinstance(r.point.deadband, str)
    ]
    if not percent:
        return False
    path = ua.RelativePath(
        Elements=[
            ua.RelativePathElement(
                ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasProperty),
                IsInverse=False,  # asyncua's default is True
                IncludeSubtypes=True,
                TargetName=ua.QualifiedName("EURange", 0),
            )
        ]
    )
    results = await client.uaclient.translate_browsepaths_to_nodeids(
        [ua.BrowsePath(r.node, path) for r in percent]
    )
    found = [(r, res.Targets[0].TargetId) for r, res in zip(percent, results, strict=True)
             if res.StatusCode.is_good() and res.Targets]  # fmt: skip
    ids = [ua.ReadValueId(ua.NodeId(t.Identifier, t.NamespaceIndex, t.NodeIdType),
                          ua.AttributeIds.Value) for _, t in found]  # fmt: skip
    values = await client.uaclient.read(ua.ReadParameters(NodesToRead=ids)) if ids else []
    for (r, _), dv in zip(found, values, strict=True):
        eu = value_of(dv)
        if isinstance(eu, ua.Range) and eu.High > eu.Low:
            r.band = float(str(r.point.deadband).strip().rstrip("%")) / 100 * (eu.High - eu.Low)
    for r in percent:
        if r.band is None:
            r.error = "BadDeadbandFilterInvalid"
            r.why = (
                "a percent deadband needs an EURange property (Low < High) on the node: "
                "give an absolute deadband instead"
            )
    return bool(ids)
