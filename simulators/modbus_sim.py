"""Modbus TCP PLC simulator with fault injection, built on pymodbus' SimDevice.

How a request is answered:

1. pymodbus parses a frame on a connection (:class:`_PlcConnection`).
2. The connection hands the parsed request to :meth:`ModbusSimulator._answer`
   in a task of its own.  pymodbus' stock handler is not used for this step:
   it reads the request back from a per-connection ``last_pdu`` attribute
   *after* awaiting the datastore, so with an injected delay an answer would
   go out with the transaction id of whatever request arrived in between,
   and a client that timed out could accept a stale answer as the reply to
   its next request.
3. ``_answer`` counts the request, waits ``delay``, checks injected faults,
   brings the process values up to date and lets pymodbus' SimDevice
   datastore build the response (address checks and exception 2 for
   addresses outside 0..1999 come from there).
4. The SimDevice ``action`` (:meth:`ModbusSimulator._sync_block`) copies the
   requested span from our :class:`RegisterImage` into the SimDevice's live
   registers, so the image stays the only place values are kept and the
   test API can change it at any time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from .degradation import condition_at
from .lifecycle import ServerLifecycle
from .plant import (
    BEARING_NAMES,
    NOMINAL,
    VALUE_NAMES,
    PumpModel,
    PumpParameters,
    PumpReading,
    with_bearing,
)
from .register_map import (
    TABLE_SIZE,
    RegisterImage,
    Table,
    bench_values,
    write_bench,
    write_constants,
    write_reading,
)

__all__ = ["Fault", "ModbusSimulator"]

_log = logging.getLogger(__name__)

#: Simulated seconds between samples of the process values (a PLC scan).
_SAMPLE_PERIOD_S = PumpParameters().sample_period_s

#: The table each function code works on (1/2/3/4 read, 5/6/15/16/22/23 write).
_FC_TABLE: dict[int, Table] = {
    1: Table.COIL,
    5: Table.COIL,
    15: Table.COIL,
    2: Table.DISCRETE,
    4: Table.INPUT,
    3: Table.HOLDING,
    6: Table.HOLDING,
    16: Table.HOLDING,
    22: Table.HOLDING,
    23: Table.HOLDING,
}

#: Answers a request, given the server's datastore (pymodbus wraps our SimDevice
#: in an internal SimCore object, hence ``Any``).
Responder = Callable[[ModbusPDU, Any], Awaitable[ModbusPDU]]


@dataclass(frozen=True)
class Fault:
    """Requests touching ``count`` entries of ``table`` from ``address`` fail."""

    table: Table
    address: int
    count: int
    exception_code: int

    def hits(self, table: Table, address: int, count: int) -> bool:
        """True when the span ``address .. address+count-1`` of ``table`` overlaps."""
        return (
            table is self.table
            and address < self.address + self.count
            and self.address < address + count
        )


def _request_spans(request: ModbusPDU) -> list[tuple[Table, int, int]]:
    """The (table, address, count) spans a request reads or writes."""
    table = _FC_TABLE.get(request.function_code)
    if table is None:
        return []
    if request.function_code == 23:  # read/write multiple registers
        return [
            (table, getattr(request, "read_address", 0), getattr(request, "read_count", 1)),
            (table, getattr(request, "write_address", 0), getattr(request, "write_count", 1)),
        ]
    return [(table, request.address, request.count or len(request.bits) or 1)]


class _PlcConnection(ServerRequestHandler):
    """One client connection; answers every request in its own task."""

    def __init__(self, server: _PlcServer) -> None:
        super().__init__(server, server.trace_packet, server.trace_pdu, server.trace_connect)
        self._responder = server.responder
        self._context = server.context
        self._tasks: set[asyncio.Task[None]] = set()
        #: Resolved once asyncio has closed the transport (socket released).
        self.closed: asyncio.Future[None] = self.loop.create_future()

    def handle_later(self) -> None:
        """Answer the request just parsed; pymodbus calls this via ``call_soon``.

        The request is captured here, before any await, so that later frames
        on the same connection cannot change what this answer refers to.
        """
        request, addr = self.last_pdu, self.last_addr
        if request is None:
            return
        task = self.loop.create_task(self._respond(request, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respond(self, request: ModbusPDU, addr: tuple | None) -> None:
        response = await self._responder(request, self._context)
        if self.transport:  # the connection may have been dropped meanwhile
            self.server_send(response, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        """Cancel pending (delayed) answers and report the socket as closed."""
        for task in self._tasks:
            task.cancel()
        if not self.closed.done():
            self.closed.set_result(None)
        super().connection_lost(exc)


class _PlcServer(ModbusTcpServer):
    """A ModbusTcpServer whose connections are :class:`_PlcConnection`."""

    def __init__(self, device: SimDevice, address: tuple[str, int], responder: Responder) -> None:
        super().__init__(device, address=address)
        self.responder = responder

    def callback_new_connection(self) -> _PlcConnection:
        """Create the protocol object for an accepted connection."""
        return _PlcConnection(self)

    def bound_port(self) -> int:
        """The port actually listened on (differs from the request for port 0).

        After ``serve_forever`` the pymodbus ``transport`` of a listener is the
        ``asyncio.Server`` returned by ``loop.create_server``.
        """
        listener: asyncio.Server = self.transport  # type: ignore[assignment]
        port: int = listener.sockets[0].getsockname()[1]
        return port

    def connections(self) -> list[_PlcConnection]:
        """Currently open client connections."""
        return list(self.active_connections.values())  # type: ignore[arg-type]


class ModbusSimulator(ServerLifecycle):
    """A simulated pump PLC speaking Modbus TCP; see ``simulators/README.md``.

    Several simulators can run in one event loop on different ports: all
    state lives in the instance.  The register image survives
    :meth:`stop`/:meth:`restart`, like the retained memory of a real PLC.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        unit_id: int = 1,
        deterministic: bool = False,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        degrade_after_h: float | None = None,
        time_scale: float = 1.0,
    ) -> None:
        """Prepare the simulator; nothing listens before :meth:`start`.

        ``unit_id`` is the unit id the PLC is documented under; like most
        Modbus TCP devices it answers requests for any unit id.  ``clock``
        (seconds, monotonic) drives the pump model and can be replaced in
        tests to move time forward instantly.  ``time_scale`` is simulated
        seconds per second of ``clock`` (3600: an hour a second); the pump
        model and the bearing fault run on simulated time.
        ``degrade_after_h`` starts a bearing fault (``simulators.degradation``)
        that many simulated hours after creation; ``None``: no fault unless
        :meth:`start_fault` is called.
        """
        if not 0 < time_scale < math.inf:
            raise ValueError("time_scale must be a finite number > 0")
        if degrade_after_h is not None and not 0 <= degrade_after_h < math.inf:
            raise ValueError("degrade_after_h must be a finite number >= 0")
        self.host = host
        self.unit_id = unit_id
        self.deterministic = deterministic
        self.seed = random.randrange(2**32) if seed is None else seed
        #: Seconds every response is held back (0 = answer at once).
        self.delay = 0.0
        #: Requests received, by function code (reads are 1..4).
        self.requests: Counter[int] = Counter()
        self._port = port
        self._clock = clock
        self._t0 = clock()
        self.time_scale = float(time_scale)
        self._fault_start_h = None if degrade_after_h is None else float(degrade_after_h)
        self._model = None if deterministic else PumpModel(self.seed)
        self._sample = -1  # model sample last encoded
        self._pins: dict[str, object] = {}
        self._faults: list[Fault] = []
        self._server: _PlcServer | None = None
        self._image = RegisterImage()
        write_constants(self._image)
        write_bench(self._image, bench_values())
        self._reading = NOMINAL
        write_reading(self._image, NOMINAL)
        self._refresh()

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        """Listen for connections; returns once connections are accepted."""
        if self._server is not None:
            raise RuntimeError("simulator already running")
        server = _PlcServer(self._device(), (self.host, self._port), self._answer)
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:  # pymodbus logs the OSError and raises this
            raise OSError(f"cannot listen on {self.host}:{self._port}") from exc
        self._server = server
        self._port = server.bound_port()

    async def stop(self) -> None:
        """Stop listening and close every connection; the port is released."""
        server, self._server = self._server, None
        if server is None:
            return
        connections = server.connections()
        await server.shutdown()
        if connections:
            await asyncio.wait([c.closed for c in connections], timeout=2.0)

    @property
    def running(self) -> bool:
        """True while listening."""
        return self._server is not None

    @property
    def connection_count(self) -> int:
        """Number of open client connections."""
        return len(self._server.connections()) if self._server else 0

    def drop_connections(self) -> None:
        """Close every client connection; the server keeps listening."""
        if self._server is not None:
            for connection in self._server.connections():
                connection.close()

    # -- memory and process values ---------------------------------------

    @property
    def reading(self) -> PumpReading:
        """The process values most recently encoded into the registers."""
        return self._reading

    def set_registers(self, table: str, address: int, values: Sequence[int]) -> None:
        """Overwrite raw registers of ``"holding"`` or ``"input"``.

        In non-deterministic mode the process values (0..11, 20..27) and the
        bench bank are re-encoded on every request, overwriting raw values
        there; use :meth:`set_value` for those.
        """
        target = Table(table)
        if target.is_bits:
            raise ValueError(f"{table!r} is a bit table, use set_bits")
        self._image.write_registers(target, address, values)

    def set_bits(self, table: str, address: int, values: Sequence[bool]) -> None:
        """Overwrite flags of ``"coil"`` or ``"discrete"``."""
        target = Table(table)
        if not target.is_bits:
            raise ValueError(f"{table!r} is a register table, use set_registers")
        self._image.write_bits(target, address, values)

    def set_value(self, name: str, value: float | int | bool | str) -> None:
        """Pin a process value (see ``VALUE_NAMES``) and encode it at once.

        The value stays pinned, also against the pump model in
        non-deterministic mode, until :meth:`clear_values`.
        """
        value = _checked_value(name, value)
        reading = replace(self._reading, **{name: value})
        write_reading(self._image, reading, [name])
        self._reading = reading
        self._pins[name] = value

    def clear_values(self) -> None:
        """Release all pinned values (back to the table or the pump model)."""
        self._pins.clear()
        if self._model is None:
            self._reading = NOMINAL
            write_reading(self._image, NOMINAL)
        self._refresh(force=True)

    # -- simulated time and the bearing fault -----------------------------

    @property
    def simulated_hours(self) -> float:
        """Simulated hours since the simulator was created (clock x ``time_scale``)."""
        return (self._clock() - self._t0) * self.time_scale / 3600.0

    @property
    def fault_start_h(self) -> float | None:
        """Simulated hour (since creation) at which the bearing fault starts, or None."""
        return self._fault_start_h

    @property
    def fault_hours(self) -> float | None:
        """Simulated hours since the bearing fault started; None before it or without one."""
        return self._hours_of_fault(self.simulated_hours * 3600.0)

    def start_fault(self) -> float:
        """Start the bearing fault now (a fault already developing starts over).

        Returns the simulated hour of the start (see :attr:`simulated_hours`).
        """
        self._fault_start_h = self.simulated_hours
        self._refresh(force=True)
        return self._fault_start_h

    # -- fault injection and counters ------------------------------------

    def fail(self, table: str, address: int, count: int = 1, exception_code: int = 2) -> Fault:
        """Answer requests touching ``table[address:address+count]`` with an exception."""
        if not 1 <= exception_code <= 11:
            raise ValueError("exception_code must be 1..11")
        if address < 0 or count < 1:
            raise ValueError("address must be >= 0 and count >= 1")
        fault = Fault(Table(table), address, count, exception_code)
        self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._faults.clear()

    def reset_counters(self) -> None:
        """Zero :attr:`requests` (in place, so references stay valid)."""
        self.requests.clear()

    # -- internals --------------------------------------------------------

    def _device(self) -> SimDevice:
        """A SimDevice with four separate, zeroed tables of TABLE_SIZE entries.

        With separate tables SimDevice uses bit addressing for coils and
        discrete inputs (coil n is bit n), as a PLC does.  Id 0 makes it
        answer every unit id.  The values come from ``_sync_block``.
        """

        def bits() -> list[SimData]:
            return [SimData(0, values=[False] * TABLE_SIZE, datatype=DataType.BITS)]

        def words() -> list[SimData]:
            return [SimData(0, count=TABLE_SIZE, values=0, datatype=DataType.REGISTERS)]

        tables = (bits(), bits(), words(), words())  # coils, discrete, holding, input
        return SimDevice(id=0, simdata=tables, action=self._sync_block)

    async def _answer(self, request: ModbusPDU, context: Any) -> ModbusPDU:
        """Build the response to one request (see the module docstring)."""
        function_code = request.function_code
        self.requests[function_code] += 1
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        response: ModbusPDU
        if (code := self._fault_code(request)) is not None:
            response = ExceptionResponse(function_code, code)
        else:
            self._refresh()
            try:
                response = await request.datastore_update(context, request.dev_id)
            except Exception:  # same fallback as pymodbus' own handler
                _log.warning("cannot serve function code %d", function_code, exc_info=True)
                response = ExceptionResponse(function_code, ExcCodes.DEVICE_FAILURE)
        response.transaction_id = request.transaction_id
        response.dev_id = request.dev_id
        return response

    def _fault_code(self, request: ModbusPDU) -> int | None:
        for table, address, count in _request_spans(request):
            for fault in self._faults:
                if fault.hits(table, address, count):
                    return fault.exception_code
        return None

    def _refresh(self, force: bool = False) -> None:
        """Advance the pump model and the bearing fault to now and encode them.

        Nothing to do in deterministic mode without a bearing fault.  Values
        change once per sample period (0.1 simulated s), like a PLC scan, so
        a burst of requests pays for the encoding only once.  In deterministic
        mode only the values the fault changes are re-encoded, without noise.
        """
        if self._model is None and self._fault_start_h is None:
            return
        period = _SAMPLE_PERIOD_S if self._model is None else self._model.sample_period
        simulated = (self._clock() - self._t0) * self.time_scale
        sample = int(simulated / period)
        if sample == self._sample and not force:
            return
        self._sample = sample
        elapsed = sample * period
        condition = condition_at(self._hours_of_fault(elapsed), rng=self._bearing_noise(sample))
        if self._model is None:
            reading = replace(with_bearing(NOMINAL, condition), **self._pins)
            write_reading(self._image, reading, [n for n in BEARING_NAMES if n not in self._pins])
        else:
            measured = with_bearing(self._model.reading_at(elapsed), condition)
            reading = replace(measured, **self._pins)
            write_reading(self._image, reading)
            write_bench(self._image, bench_values(elapsed / self.time_scale))
        self._reading = reading

    def _hours_of_fault(self, simulated_s: float) -> float | None:
        """Simulated hours of fault development at ``simulated_s`` (None: no fault yet)."""
        if self._fault_start_h is None:
            return None
        hours = simulated_s / 3600.0 - self._fault_start_h
        return hours if hours >= 0 else None

    def _bearing_noise(self, sample: int) -> random.Random | None:
        """Per-sample noise of the vibration values: none in deterministic mode."""
        return None if self.deterministic else random.Random(f"{self.seed}:bearing:{sample}")

    async def _sync_block(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        live: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """SimDevice action: keep the SimDevice's live registers equal to our image.

        Called after SimDevice validated the span.  For registers ``address``
        and ``count`` are in registers; for bit tables ``address`` is the bit
        address while ``start_address``, ``count`` and ``live`` are in packed
        16-bit words.  Writes from clients are stored in the image first.
        """
        table = _FC_TABLE[function_code]
        if table.is_bits:
            if set_values is not None:
                self._image.write_bits(table, address, [bool(v) for v in set_values])
            first = address // 16
            offset = first - start_address
            live[offset : offset + count] = self._image.packed_bits(table, first, count)
        else:
            if set_values is not None:
                self._image.write_registers(table, address, [int(v) for v in set_values])
            offset = address - start_address
            live[offset : offset + count] = self._image.registers(table)[address : address + count]
        return None


def _checked_value(name: str, value: object) -> float | int | bool | str:
    """Validate a value for ``set_value`` against the type of the reading field."""
    if name not in VALUE_NAMES:
        raise KeyError(f"unknown process value {name!r}; known: {', '.join(sorted(VALUE_NAMES))}")
    kind = type(getattr(NOMINAL, name))
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, kind) and isinstance(value, bool | str):
        return value
    raise TypeError(f"{name} needs a {kind.__name__}, got {value!r}")
