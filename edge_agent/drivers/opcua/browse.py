"""`edge-agent browse`: the address space under the Objects folder, to help write points.

One Browse request per level (plus BrowseNext when the server pages), then one Read for the
data type and value of every variable found, and one for the names of non-standard data
types: a few requests whatever the size of the tree. The namespace-0 children of the Objects
folder (the Server object: the server's own diagnostics) are left out.

Each row is (depth, node id, browse name, data type, value): depth 0 for the children of
Objects; the node id is what a point's `node:` takes, and the browse names joined with "/"
after "0:Objects" are what its `browse_path:` takes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asyncua import Client, ua

from ...config.opcua import OpcUaDevice
from .convert import quality_of, to_python
from .session import new_client, open_session, shutdown, translate_errors

Row = tuple[int, str, str, str, str]
_HIERARCHICAL = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
_OBJECTS = ua.NodeId(ua.ObjectIds.ObjectsFolder)
_CLASSES = ua.NodeClass.Object | ua.NodeClass.Variable
_DATA_TYPE = ua.AttributeIds.DataType
_VALUE = ua.AttributeIds.Value
_READ_CHUNK = 500  # values per Read: below any server's MaxNodesPerRead in practice
_WIDTH = 40


async def browse(device: OpcUaDevice, depth: int) -> list[Row]:
    """The tree under Objects, `depth` levels deep (1: its children only), in tree order."""
    client = new_client(device)
    try:
        await open_session(client, device)
        with translate_errors(device, "browse"):
            return await _walk(client, depth)
    finally:
        await shutdown(client, device.timeout)


def _node_id(ref: ua.ReferenceDescription) -> ua.NodeId:
    n = ref.NodeId
    return ua.NodeId(n.Identifier, n.NamespaceIndex, n.NodeIdType)


async def _children(
    client: Client, parents: list[ua.NodeId]
) -> list[list[ua.ReferenceDescription]]:
    params = ua.BrowseParameters(
        View=ua.ViewDescription(),
        RequestedMaxReferencesPerNode=0,
        NodesToBrowse=[
            ua.BrowseDescription(
                NodeId=p,
                BrowseDirection=ua.BrowseDirection.Forward,
                ReferenceTypeId=_HIERARCHICAL,
                IncludeSubtypes=True,
                NodeClassMask=int(_CLASSES),
                ResultMask=int(ua.BrowseResultMask.All),
            )
            for p in parents
        ],
    )
    results = await client.uaclient.browse(params)
    out = [list(r.References) if r.StatusCode.is_good() else [] for r in results]
    pending = [(i, r.ContinuationPoint) for i, r in enumerate(results) if r.ContinuationPoint]
    while pending:
        more = await client.uaclient.browse_next(
            ua.BrowseNextParameters(
                ReleaseContinuationPoints=False, ContinuationPoints=[cp for _, cp in pending]
            )
        )
        for (i, _), r in zip(pending, more, strict=True):
            out[i].extend(r.References)
        pending = [(i, r.ContinuationPoint) for (i, _), r in zip(pending, more, strict=True)]
        pending = [(i, cp) for i, cp in pending if cp]
    return out


async def _read(client: Client, ids: list[ua.ReadValueId]) -> list[ua.DataValue]:
    out: list[ua.DataValue] = []
    for i in range(0, len(ids), _READ_CHUNK):
        params = ua.ReadParameters(NodesToRead=ids[i : i + _READ_CHUNK])
        out.extend(await client.uaclient.read(params))
    return out


async def _walk(client: Client, depth: int) -> list[Row]:
    tree: dict[ua.NodeId, list[ua.ReferenceDescription]] = {}
    seen = {_OBJECTS}
    frontier = [_OBJECTS]
    for _ in range(max(depth, 0)):
        if not frontier:
            break
        following: list[ua.NodeId] = []
        for parent, refs in zip(frontier, await _children(client, frontier), strict=True):
            kids = [
                r
                for r in refs
                if _node_id(r) not in seen
                and not (parent == _OBJECTS and r.NodeId.NamespaceIndex == 0)
            ]
            tree[parent] = kids
            for r in kids:
                seen.add(_node_id(r))
                following.append(_node_id(r))
        frontier = following
    variables = [
        _node_id(r) for refs in tree.values() for r in refs if r.NodeClass == ua.NodeClass.Variable
    ]
    ids = [ua.ReadValueId(n, a) for n in variables for a in (_DATA_TYPE, _VALUE)]
    values = await _read(client, ids)
    facts = {n: (values[2 * i], values[2 * i + 1]) for i, n in enumerate(variables)}
    type_names = await _type_names(client, [dt for dt, _ in facts.values()])
    rows: list[Row] = []

    def visit(parent: ua.NodeId, level: int) -> None:
        for ref in tree.get(parent, []):
            nid = _node_id(ref)
            dtype, value = ("", "")
            if nid in facts:
                dt_value, dv = facts[nid]
                dtype = type_names.get(_as_node(dt_value), "") if dt_value else ""
                value = short_text(dv)
            rows.append((level, nid.to_string(), ref.BrowseName.to_string(), dtype, value))
            visit(nid, level + 1)

    visit(_OBJECTS, 0)
    return rows


def _as_node(dv: ua.DataValue) -> ua.NodeId | None:
    value = dv.Value.Value if dv.Value is not None else None
    return value if isinstance(value, ua.NodeId) else None


async def _type_names(client: Client, data_types: list[ua.DataValue]) -> dict[Any, str]:
    """Standard types by their well-known names; the server's own by their browse names."""
    names: dict[Any, str] = {}
    unknown: list[ua.NodeId] = []
    for dv in data_types:
        node = _as_node(dv)
        if node is None or node in names or node in unknown:
            continue
        ident = node.Identifier
        standard = (
            ua.ObjectIdNames.get(ident) if node.NamespaceIndex == 0 and type(ident) is int else None
        )
        if isinstance(standard, str):
            names[node] = standard
        else:
            unknown.append(node)
    if unknown:
        found = await _read(
            client, [ua.ReadValueId(n, ua.AttributeIds.BrowseName) for n in unknown]
        )
        for node, dv in zip(unknown, found, strict=True):
            qname = dv.Value.Value if dv.Value is not None else None
            names[node] = qname.Name if isinstance(qname, ua.QualifiedName) else node.to_string()
    return names


def short_text(dv: ua.DataValue) -> str:
    """A value as one short line: the status name when it is not good."""
    code = dv.StatusCode.value if dv.StatusCode is not None else 0
    _, err = quality_of(code)
    if err is not None and code & 0x8000_0000:
        return err
    raw = dv.Value.Value if dv.Value is not None else None
    value = to_python(raw, dv.Value.VariantType) if dv.Value is not None else None
    text = "" if value is None else raw.isoformat() if isinstance(raw, datetime) else str(value)
    if len(text) > _WIDTH:
        text = text[: _WIDTH - 1] + "…"
        if isinstance(value, list):
            text += f" ({len(value)} values)"
    return text if err is None else f"{text} ({err})"
