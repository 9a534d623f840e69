"""Protocol name -> driver. Imports a protocol's library only when a config uses it, so a
Modbus-only gateway never loads an OPC UA stack (memory matters on a Raspberry Pi)."""

from __future__ import annotations

from ..config.models import Device
from .base import Driver


def make_driver(device: Device, *, keep_raw: bool = False) -> Driver:
    if device.protocol == "modbus-tcp":
        from .modbus.driver import ModbusTcpDriver

        return ModbusTcpDriver(device, keep_raw=keep_raw)
    if device.protocol == "opcua":
        from .opcua.driver import OpcUaDriver

        return OpcUaDriver(device, keep_raw=keep_raw)
    raise ValueError(f"no driver for protocol {device.protocol!r}")  # the config refuses it first
