"""The driver interface: connect, poll, close. Everything else lives in the runner.

Error tree (what the runner does next):

    DriverError                  base of what a driver raises
      DeviceUnavailable          cannot connect or the link broke: every point bad, back off,
                                 reconnect
        DeviceTimeout            no answer in time: the same
    (anything a point gets wrong: a Modbus exception, a malformed answer, a NaN)
                                 is not raised: it is a Reading with quality bad and an error code

A driver translates its library's exceptions into these at one place, with `raise ... from err`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..readings import Reading


class DriverError(Exception):
    """Base of the errors a driver raises. `code` goes into the readings' `err`."""

    code = "driver_error"


class DeviceUnavailable(DriverError):
    code = "unreachable"


class DeviceTimeout(DeviceUnavailable):
    code = "timeout"


class Driver(Protocol):
    """One device, one connection. Not reentrant: the runner never overlaps calls."""

    async def connect(self) -> None:
        """Open the connection; raise DeviceUnavailable when it cannot be had."""

    async def poll(self) -> list[Reading]:
        """Read every point once. Point-level failures are bad readings, not exceptions."""

    async def close(self) -> None:
        """Close the connection; never raises."""

    def describe(self) -> str:
        """One line for the logs: the plan of requests, the address."""


@runtime_checkable
class Counting(Protocol):
    """An optional ability: counters of what the driver itself did with values, published
    per device on the health topic beside the runner's."""

    def counters(self) -> dict[str, int]:
        """Monotonic counts since the driver was made, by name."""
