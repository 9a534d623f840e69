"""What every simulator server offers a test: start(), stop(), restart() on the same port,
and `async with`. A subclass gives start() and stop() and sets `_port`."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class ServerLifecycle:
    _port: int

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def restart(self) -> None:
        """Stop, then listen again on the same port (what the server holds is kept)."""
        await self.stop()
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The listening port (the requested one until first started)."""
        return self._port
