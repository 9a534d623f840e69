"""OPC UA device declarations (issue 4). Key names are a contract: add, never rename."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from .indicators import Indicator
from .models_base import NAME, Strict
from .units import Duration, format_duration

DEPRECATED_POLICIES = ("Basic128Rsa15", "Basic256")
_NODE = re.compile(r"^(ns=\d+;|nsu=[^;]+;)?(i=\d+|s=.+|g=[0-9a-fA-F-]{36}|b=\S+)$")


class OpcUaSecurity(Strict):
    policy: Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"] = (
        "None"
    )
    mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    certificate: Path | None = Field(None, description="This client's certificate (DER or PEM)")
    private_key: Path | None = Field(None, description="This client's private key (PEM)")
    trusted_servers: Path | None = Field(
        None, description="A directory (or one file) of server certificates we accept"
    )

    @field_validator("policy", mode="before")
    @classmethod
    def _not_deprecated(cls, v: object) -> object:
        if v in DEPRECATED_POLICIES:
            raise ValueError(
                f"{v} is deprecated (broken cryptography) and refused: use Basic256Sha256, "
                "Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss"
            )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> OpcUaSecurity:
        if (self.policy == "None") != (self.mode == "None"):
            raise ValueError(
                "policy and mode go together: both None, or a policy with Sign or SignAndEncrypt"
            )
        if self.mode != "None" and not (self.certificate and self.private_key):
            raise ValueError(
                "Sign and SignAndEncrypt need certificate and private_key "
                "(make them with: edge-agent certs opcua --out DIR)"
            )
        if self.mode != "None" and not self.trusted_servers:
            raise ValueError(
                "Sign and SignAndEncrypt need trusted_servers: the server "
                "certificates this gateway accepts"
            )
        return self


class OpcUaPoint(Strict):
    name: str = Field(pattern=NAME, max_length=64)
    node: str | None = Field(
        None, description='"ns=2;s=Motor7.BearingTemp", "ns=2;i=1001", "nsu=<uri>;s=..."'
    )
    browse_path: str | None = Field(None, description='e.g. "0:Objects/2:Motor7/2:BearingTemp"')
    mode: Literal["subscribe", "poll"] = "subscribe"
    sampling_interval: Duration | None = Field(
        None, description="subscribe: how often the server samples (default: poll_interval)"
    )
    queue_size: int = Field(1, ge=1, le=1000)
    deadband: float | str | None = Field(
        None, description='subscribe: absolute change (0.2) or percent of EU range ("2%")'
    )
    unit: str | None = None
    description: str | None = None

    @field_validator("node")
    @classmethod
    def _node(cls, v: str | None) -> str | None:
        if v is not None and not _NODE.match(v):
            raise ValueError(
                f"'{v}' is not a node id: write ns=2;s=Name, ns=2;i=1001 or nsu=URI;s=Name"
            )
        return v

    @field_validator("deadband")
    @classmethod
    def _deadband(cls, v: float | str | None) -> float | str | None:
        if isinstance(v, str) and not re.fullmatch(r"\d+(\.\d+)?%", v.strip()):
            raise ValueError(f"'{v}': write an absolute deadband (0.2) or a percentage (2%)")
        if isinstance(v, float | int) and v < 0:
            raise ValueError("a deadband cannot be negative")
        return v

    @model_validator(mode="after")
    def _address(self) -> OpcUaPoint:
        if (self.node is None) == (self.browse_path is None):
            raise ValueError("give node or browse_path (one of them)")
        return self


class OpcUaDevice(Strict):
    name: str = Field(pattern=NAME, max_length=64)
    protocol: Literal["opcua"]
    endpoint: str = Field(description="opc.tcp://host:4840[/path]")
    poll_interval: Duration = 1.0
    timeout: Duration = Field(5.0, description="Per request; also the connect timeout")
    keepalive: Duration = Field(5.0, description="A dead server is noticed within this")
    channel_lifetime: Duration = Field(
        3600.0,
        description="Requested lifetime of the secure channel's keys; they are renewed at "
        "75 % of what the server grants, and a failed renewal reconnects",
    )
    security: OpcUaSecurity = OpcUaSecurity()  # type: ignore[call-arg]
    username: str | None = None
    password: SecretStr | None = Field(None, description='Only as "${ENV_VAR}": never literal')
    password_file: Path | None = None
    reconnect_delay: Duration = 1.0
    reconnect_delay_max: Duration = 30.0
    description: str | None = None
    points: list[OpcUaPoint] = Field(min_length=1)
    indicators: list[Indicator] = Field(default_factory=list)
    indicator_interval: Duration = 10.0

    @field_validator("channel_lifetime")
    @classmethod
    def _lifetime(cls, v: float) -> float:
        if v < 1:
            raise ValueError(
                f"{format_duration(v)} is too short: give at least 1s "
                "(the default, 1h, suits most servers)"
            )
        return v

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if not re.match(r"^opc\.tcp://[^/:]+(:\d+)?(/.*)?$", v):
            raise ValueError(f"'{v}' is not an OPC UA endpoint: write opc.tcp://HOST:4840")
        return v
