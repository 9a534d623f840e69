"""The asyncua ``Server`` behind the OPC UA simulator: identity, endpoints, address space.

Everything here configures an asyncua 2.x server; when it listens and what it serves is up
to :class:`simulators.opcua_sim.OpcUaSimulator` (see that module for the lifecycle notes).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from asyncua import Server, ua
from asyncua.common.node import Node

from .opcua_model import SAMPLE_RATE_HZ, WAVEFORM_SAMPLES, MotorReading
from .opcua_variables import (
    BROKEN,
    MOTOR_VARIABLES,
    SAMPLE_RATE,
    SCALAR_PERIOD_S,
    TYPE_VALUES,
    WAVEFORM,
    WAVEFORM_PERIOD_S,
    node_string,
)

__all__ = [
    "APPLICATION_URI",
    "ENDPOINT_PATH",
    "LOCAL_NAMESPACE_URI",
    "NAMESPACE_URI",
    "PRODUCT_URI",
    "SERVER_NAME",
    "add_nodes",
    "advertise",
    "bound_port",
    "configure_server",
    "quiet_asyncua",
]

#: Namespace of every simulator node (index 2 of the server's NamespaceArray).
NAMESPACE_URI = "urn:edge-agent:simulator"
#: ApplicationUri of the server, also the URI in its certificate's subjectAltName.
APPLICATION_URI = "urn:edge-agent:simulator"
#: NamespaceArray[1], the server's own namespace.  Part 5 6.3.1 would have it equal the
#: ApplicationUri, but that URI is our node namespace, which must stay at index 2.
LOCAL_NAMESPACE_URI = "urn:edge-agent:simulator:server"
ENDPOINT_PATH = "/edge-agent/sim"
PRODUCT_URI = "urn:edge-agent:simulator:product"
SERVER_NAME = "edge-agent OPC UA simulator"

_UNITS_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"

#: asyncua certificate validator: raises ServiceError to refuse a client certificate.
Validator = Callable[[Any, ua.ApplicationDescription], Awaitable[None]]

#: asyncua loggers that the simulator turns down to ERROR (they log every connection,
#: session and subscription at INFO, and harmless oddities at WARNING).
_QUIET_LOGGERS = (
    "asyncua.server",
    "asyncua.common.connection",
    "asyncua.crypto.uacrypto",
    "asyncua.crypto.security_policies",
)


def quiet_asyncua(level: int = logging.ERROR) -> None:
    """Turn the server-side asyncua loggers down to ``level`` (unless set explicitly)."""
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


class _ExpectedErrors(logging.Filter):
    """Drop asyncua ERROR records about things that are normal for a test server.

    * the traceback asyncua logs when the port is taken (``start`` raises OSError instead);
    * "sending service fault response": every refused request (an untrusted certificate,
      a session unknown after a restart) is logged at ERROR; the client gets the fault.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "sending service fault response: %s (%s)":
            return False
        exc = record.exc_info[1] if record.exc_info else None
        return not (record.msg == "%s error starting server" and isinstance(exc, OSError))


for _name in ("asyncua.server.server", "asyncua.server.uaprocessor"):
    logging.getLogger(_name).addFilter(_ExpectedErrors())


async def configure_server(
    endpoint: str, credentials: tuple[bytes, bytes] | None, validator: Validator
) -> tuple[Server, int]:
    """A configured asyncua Server, no nodes yet, not listening; and the index of
    :data:`NAMESPACE_URI`.  ``credentials`` (certificate DER, key PEM): also offer the
    Basic256Sha256 Sign and SignAndEncrypt endpoints, with ``validator`` for clients."""
    server = Server()
    await server.init()
    server.disable_clock(True)
    server.set_server_name(SERVER_NAME)
    server.product_uri = PRODUCT_URI
    server.manufacturer_name = "edge-agent"
    server.application_type = ua.ApplicationType.Server
    server.set_endpoint(endpoint)
    await server.set_application_uri(APPLICATION_URI)
    namespaces = await server.get_namespace_array()
    namespaces[1] = LOCAL_NAMESPACE_URI  # set_application_uri put APPLICATION_URI there
    await server.nodes.namespace_array.write_value(namespaces)
    ns = await server.register_namespace(NAMESPACE_URI)
    policies = [ua.SecurityPolicyType.NoSecurity]
    if credentials is not None:
        certificate, private_key = credentials
        await server.load_certificate(certificate, format="der")
        await server.load_private_key(private_key, format="pem")
        policies += [
            ua.SecurityPolicyType.Basic256Sha256_Sign,
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        ]
        server.set_certificate_validator(validator)
    server.set_security_policy(policies)
    return server, ns


async def add_nodes(
    server: Server,
    ns: int,
    reading: MotorReading,
    samples: list[float],
    types: Mapping[str, Any],
) -> None:
    """Motor 7 and the Types folder, with their first values, in namespace ``ns``."""
    objects = server.nodes.objects
    motor = await objects.add_object(ua.NodeId("Motor7", ns), ua.QualifiedName("Motor7", ns))
    for name, spec in MOTOR_VARIABLES.items():
        node = await _add_variable(
            server,
            ns,
            motor,
            name,
            ua.Variant(getattr(reading, spec.field), spec.variant),
            spec.description,
            analog=spec.eu_range is not None,
        )
        if spec.eu_range is not None:
            low, high = spec.eu_range
            await _add_property(
                ns, node, node_string(name), "EURange", ua.Range(Low=low, High=high)
            )
        if spec.unit is not None:
            await _add_property(
                ns, node, node_string(name), "EngineeringUnits", _unit(spec.unit, spec.unit_name)
            )
    vibration = await motor.add_object(
        ua.NodeId("Motor7.Vibration", ns), ua.QualifiedName("Vibration", ns)
    )
    wave = await _add_variable(
        server,
        ns,
        vibration,
        WAVEFORM,
        ua.Variant(samples, ua.VariantType.Double),
        f"Acceleration, {WAVEFORM_SAMPLES} samples at {SAMPLE_RATE_HZ:g} Hz, m/s²",
        array=WAVEFORM_SAMPLES,
        sampling_ms=WAVEFORM_PERIOD_S * 1000.0,
    )
    await _add_property(ns, wave, node_string(WAVEFORM), "EngineeringUnits", _unit("MSK", "m/s²"))
    await _add_variable(
        server,
        ns,
        vibration,
        SAMPLE_RATE,
        ua.Variant(SAMPLE_RATE_HZ, ua.VariantType.Double),
        "Sample rate of Waveform, Hz",
    )
    broken = await _add_variable(
        server, ns, motor, BROKEN, ua.Variant(0.0, ua.VariantType.Double), "Always BadSensorFailure"
    )
    await server.write_attribute_value(
        broken.nodeid, ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure))
    )
    folder = await objects.add_folder(ua.NodeId("Types", ns), ua.QualifiedName("Types", ns))
    for name, (variant, _) in TYPE_VALUES.items():
        await _add_variable(
            server,
            ns,
            folder,
            f"Types.{name}",
            ua.Variant(types[name], variant),
            f"Fixed {name} test value",
        )


async def _add_variable(
    server: Server,
    ns: int,
    parent: Node,
    key: str,
    value: ua.Variant,
    description: str,
    *,
    analog: bool = False,
    array: int | None = None,
    sampling_ms: float = SCALAR_PERIOD_S * 1000.0,
) -> Node:
    """Add a read-only variable ``<key>`` with string node id ``node_string(key)``."""
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = ua.NodeId(node_string(key), ns)
    item.BrowseName = ua.QualifiedName(key.rsplit(".", 1)[-1], ns)
    item.NodeClass = ua.NodeClass.Variable
    item.ParentNodeId = parent.nodeid
    item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasComponent)
    item.TypeDefinition = ua.NodeId(
        ua.ObjectIds.AnalogItemType if analog else ua.ObjectIds.BaseDataVariableType
    )
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(item.BrowseName.Name)
    attrs.Description = ua.LocalizedText(description)
    attrs.DataType = ua.NodeId(value.VariantType.value)
    attrs.Value = value
    attrs.ValueRank = ua.ValueRank.Scalar if array is None else ua.ValueRank.OneDimension
    if array is not None:
        attrs.ArrayDimensions = [array]
    attrs.AccessLevel = ua.AccessLevel.CurrentRead.mask
    attrs.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
    attrs.MinimumSamplingInterval = sampling_ms
    attrs.Historizing = False
    item.NodeAttributes = attrs
    results = await server.iserver.isession.add_nodes([item])
    results[0].StatusCode.check()
    return server.get_node(results[0].AddedNodeId)


async def _add_property(ns: int, node: Node, owner: str, name: str, value: Any) -> None:
    """A standard property (browse name in namespace 0), node id ``<owner>.<name>``."""
    datatype = ua.NodeId(
        ua.ObjectIds.Range if isinstance(value, ua.Range) else ua.ObjectIds.EUInformation
    )
    await node.add_property(
        ua.NodeId(f"{owner}.{name}", ns),
        ua.QualifiedName(name, 0),
        value,
        datatype=datatype,
    )


def _unit(code: str, name: str) -> ua.EUInformation:
    """EngineeringUnits for a UNECE common code (UnitId per OPC UA Part 8)."""
    unit_id = 0
    for char in code:
        unit_id = (unit_id << 8) | ord(char)
    return ua.EUInformation(
        NamespaceUri=_UNITS_NAMESPACE,
        UnitId=unit_id,
        DisplayName=ua.LocalizedText(name),
        Description=ua.LocalizedText(name),
    )


def bound_port(server: Server) -> int:
    """The port actually listened on (asyncua fills ``bserver.port`` for port 0)."""
    assert server.bserver is not None
    port = server.bserver.port
    if not port:  # several sockets (a host name with IPv4 and IPv6): take the first
        listener = getattr(server.bserver, "_server", None)
        port = listener.sockets[0].getsockname()[1] if listener else 0
        server.bserver.port = port
    return int(port)


def advertise(server: Server, url: str) -> None:
    """Put the real port into the endpoint descriptions (made before listening)."""
    server.set_endpoint(url)
    for description in server.iserver.endpoints:
        description.EndpointUrl = url
        description.Server.DiscoveryUrls = [url]
