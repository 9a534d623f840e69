"""The one-screen summary `edge-agent check` prints. Never shows a secret's value."""

from __future__ import annotations

from .config import Loaded
from .config.opcua import OpcUaDevice
from .config.units import format_duration
from .drivers.modbus.plan import plan


def summary(loaded: Loaded) -> str:
    cfg = loaded.config
    m = cfg.mqtt
    prefix = cfg.prefix()
    files = len(loaded.files)
    lines = [
        f"{loaded.file}: OK" + (f" ({files} files)" if files > 1 else ""),
        f"gateway  {cfg.gateway.id} at site {cfg.gateway.site}",
    ]
    auth = "anonymous"
    if m.username:
        auth = f"user {m.username}"
        if "mqtt.password" in loaded.secrets:
            auth += f", password {loaded.secrets['mqtt.password']}"
    tls = "TLS off"
    if m.tls_enabled:
        tls = "TLS on, " + (f"CA {m.tls.ca_file}" if m.tls and m.tls.ca_file else "system CAs")
        if m.tls and m.tls.cert_file:
            tls += f", client cert {m.tls.cert_file}"
    lines.append(
        f"mqtt     {m.url}  MQTT {m.protocol}, QoS {m.qos}, client id {cfg.client_id}, "
        f"{auth}, {tls}"
    )
    lines.append(f"buffer   {cfg.buffer.path} (sync {cfg.buffer.sync})")
    total_points = sum(len(d.points) for d in cfg.devices)
    lines.append(f"devices  {len(cfg.devices)}, points {total_points}")
    width = max((len(d.name) for d in cfg.devices), default=0)
    for d in cfg.devices:
        if isinstance(d, OpcUaDevice):
            subscribed = sum(1 for p in d.points if p.mode == "subscribe")
            sec = d.security
            security = "no security" if sec.mode == "None" else f"{sec.policy} {sec.mode}"
            if d.username:
                security += f", user {d.username}"
                if f"{d.name}.password" in loaded.secrets:
                    security += f", password {loaded.secrets[f'{d.name}.password']}"
            lines.append(
                f"  {d.name:<{width}}  opcua {d.endpoint}, {security}, "
                f"{_n(len(d.points), 'point')} ({subscribed} subscribed), "
                f"every {format_duration(d.poll_interval)}"
            )
            continue
        blocks = plan(d.points, d.max_gap, d.max_registers, d.max_bits)
        lines.append(
            f"  {d.name:<{width}}  {d.protocol} {d.host}:{d.port} unit {d.unit_id}, "
            f"every {format_duration(d.poll_interval)}, {_n(len(d.points), 'point')} in "
            f"{_n(len(blocks), 'request')}"
        )
    lines.append("topics")
    lines.append(f"  {prefix}/status  (retained, last will)")
    lines.append(f"  {prefix}/health  (retained, every {format_duration(cfg.health_interval)})")
    lines.append(f"  {prefix}/meta/<device>  (retained)")
    for d in cfg.devices:
        lines.append(f"  {prefix}/{d.name}/telemetry")
        if d.indicators:
            lines.append(f"  {prefix}/{d.name}/indicators, {prefix}/{d.name}/events")
    return "\n".join(lines)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
