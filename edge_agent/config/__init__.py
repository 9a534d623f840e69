"""Configuration: YAML with positions -> pydantic models -> checks. See models.py for the keys."""

from .loader import ConfigError, Loaded, load_config
from .models import Buffer, Config, ModbusPoint, ModbusTcpDevice, Mqtt
from .yamlpos import Problem

__all__ = [
    "Buffer",
    "Config",
    "ConfigError",
    "Loaded",
    "ModbusPoint",
    "ModbusTcpDevice",
    "Mqtt",
    "Problem",
    "load_config",
]
