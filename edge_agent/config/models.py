"""The configuration contract, as pydantic models: the single source of truth.

They give the validation, the error messages' key paths and `edge-agent schema`. Key names
are a contract with other tools and the platform's documentation: add keys, rename none.
Checks that need several fields or several points (overlaps, duplicates) live in checks.py,
so that each problem can be reported at the exact key where it stands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from .indicators import Indicator
from .models_base import NAME, SLUG, Strict
from .opcua import OpcUaDevice
from .units import Duration, Size

Table = Literal["holding", "input", "coil", "discrete"]
DataType = Literal[
    "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string"
]
DATA_TYPES: tuple[str, ...] = DataType.__args__  # type: ignore[attr-defined]
Order = Literal["big", "little"]
_REGISTERS = {
    "bool": 1,
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "int64": 4,
    "uint64": 4,
    "float32": 2,
    "float64": 4,
}


class Gateway(Strict):
    id: str = Field(pattern=SLUG, max_length=64, description="This gateway's id, e.g. gw-safi-01")
    site: str = Field(pattern=SLUG, max_length=64, description="The plant or site, e.g. safi")


class Tls(Strict):
    ca_file: Path | None = Field(None, description="CA bundle that signed the broker's cert")
    cert_file: Path | None = Field(None, description="Client certificate (mutual TLS)")
    key_file: Path | None = Field(None, description="Client private key (mutual TLS)")


class Mqtt(Strict):
    url: str = Field(description="mqtt://host[:1883] or mqtts://host[:8883] (TLS)")
    client_id: str | None = Field(None, description="Default: gateway.id")
    topic_prefix: str = Field(
        "maintenance4/{site}/{gateway}",
        description="Prefix of every topic; {site} and {gateway} are replaced",
    )
    qos: Literal[0, 1] = 1
    protocol: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT 5 reports refused publishes; 3.1.1 cannot"
    )
    username: str | None = None
    password: SecretStr | None = Field(None, description='Only as "${ENV_VAR}": never literal')
    password_file: Path | None = Field(None, description="File holding the password (chmod 600)")
    tls: Tls | None = None
    keepalive: Duration = Field(30.0, description="A silent connection is noticed within 1.5x")
    reconnect_delay: Duration = 1.0
    reconnect_delay_max: Duration = 60.0
    inflight: int = Field(50, ge=1, le=1000, description="Unacknowledged publishes at once")

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    @field_validator("keepalive")
    @classmethod
    def _keepalive(cls, v: float) -> float:
        if v < 1 or v > 65535:
            raise ValueError("must be between 1s and 18h (MQTT counts it in whole seconds)")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(
                f"'{v}' is not an MQTT URL: write mqtt://HOST:1883 or mqtts://HOST:8883"
            )
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"'{v}' has a bad port number") from None
        return v

    @property
    def tls_enabled(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls_enabled else 1883)


class Buffer(Strict):
    path: Path = Field(Path("/var/lib/edge-agent/buffer.db"), description="SQLite file")
    sync: Literal["full", "normal"] = Field(
        "full", description="full: a power cut loses nothing buffered; normal: last commits may be"
    )
    flush_interval: Duration = Field(
        0.2,
        description="Group commit: at most this long (readings not yet committed are lost "
        "in a crash; each commit costs an fsync)",
    )
    flush_messages: int = Field(200, ge=1, description="Group commit: at most this many messages")
    max_size: Size = Field(
        512 * 2**20, description="Cap on the buffered messages (e.g. 512MiB); see when_full"
    )
    max_age: Duration | None = Field(
        None, description="Messages older than this (e.g. 7d) are dropped; none: kept until sent"
    )
    when_full: Literal["drop_oldest", "drop_newest"] = Field(
        "drop_oldest", description="What to drop when max_size or min_free is reached"
    )
    min_free: Size = Field(
        64 * 2**20, description="Keep this much of the file system free (SD cards fill up)"
    )
    replay_rate: float | None = Field(
        None, gt=0, description="Messages/s when replaying a backlog; none: as fast as acked"
    )


class ModbusPoint(Strict):
    name: str = Field(pattern=NAME, max_length=64)
    table: Table = "holding"
    address: int = Field(ge=0, le=65535, description="0-based protocol address")
    type: DataType | None = Field(None, description="Default: bool for coil/discrete, else uint16")
    word_order: Order = Field("big", description="big = ABCD, little = CDAB (32/64-bit)")
    byte_order: Order = Field("big", description="little swaps the bytes of each register")
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    bit: int | None = Field(None, ge=0, description="A bit (0-15) of a register, for type bool")
    length: int | None = Field(None, ge=1, le=250, description="Characters, for type string")
    description: str | None = None

    @property
    def dtype(self) -> str:
        if self.type is not None:
            return self.type
        return "bool" if self.table in ("coil", "discrete") else "uint16"

    @property
    def width(self) -> int:
        """Registers (or bits, in the coil and discrete tables) this point occupies."""
        if self.table in ("coil", "discrete"):
            return 1
        if self.dtype == "string":
            return ((self.length or 0) + 1) // 2
        return _REGISTERS[self.dtype]


class ModbusTcpDevice(Strict):
    name: str = Field(pattern=NAME, max_length=64)
    protocol: Literal["modbus-tcp"]
    host: str = Field(min_length=1)
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255)
    poll_interval: Duration = 1.0
    timeout: Duration = 1.0
    max_gap: int = Field(
        10, ge=0, le=124, description="Unused addresses read through to save requests"
    )
    max_registers: int = Field(125, ge=1, le=125, description="Registers per request at most")
    max_bits: int = Field(2000, ge=1, le=2000, description="Coils/inputs per request at most")
    reconnect_delay: Duration = 1.0
    reconnect_delay_max: Duration = 30.0
    description: str | None = None
    points: list[ModbusPoint] = Field(min_length=1)
    indicators: list[Indicator] = Field(
        default_factory=list, description="Condition indicators computed on this device's points"
    )
    indicator_interval: Duration = Field(
        10.0, description="How often the indicators are published (events go at once)"
    )

    @field_validator("poll_interval", "timeout")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v < 0.01:
            raise ValueError("must be at least 10ms")
        return v


Device = Annotated[ModbusTcpDevice | OpcUaDevice, Field(discriminator="protocol")]


class Config(Strict):
    gateway: Gateway
    mqtt: Mqtt
    buffer: Buffer = Buffer()  # type: ignore[call-arg]  # mypy without the pydantic plugin
    devices: list[Device] = Field(default_factory=list)
    include: str | list[str] | None = Field(
        None, description="Glob(s) of files holding more `devices:`, relative to this file"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    health_interval: Duration = Field(
        60.0, description="How often counters are published on {prefix}/health (retained)"
    )

    def prefix(self) -> str:
        return self.mqtt.topic_prefix.format(site=self.gateway.site, gateway=self.gateway.id)

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or self.gateway.id
