"""Device simulators used by the edge-agent tests and demo.

``python -m simulators modbus --port 5020`` runs the pump PLC simulator; in
process, use :class:`ModbusSimulator`.  See ``simulators/README.md``.
"""

from .modbus_sim import Fault, ModbusSimulator
from .plant import NOMINAL, VALUE_NAMES, PumpReading
from .registers import Order, ValueType, encode

__all__ = [
    "NOMINAL",
    "VALUE_NAMES",
    "Fault",
    "ModbusSimulator",
    "Order",
    "PumpReading",
    "ValueType",
    "encode",
]
