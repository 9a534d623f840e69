"""A proxy between an OPC UA client and server that can lose or slow secure-channel renewals.

OPC UA TCP frames every message with an 8-byte header: the type (HEL, ACK, OPN, MSG, CLO,
ERR), a chunk flag, and the size, little-endian, header included. The header stays in clear
text even under SignAndEncrypt, so the proxy tells an OpenSecureChannel (OPN) from the rest
without decrypting. The first OPN each way on a connection issues the channel; every later
one renews it (OPC UA Part 6, 6.7.4). Two faults, each on all connections while set:

- `drop_renewals`: renewal requests never reach the server, as if a middlebox lost them.
  Everything else passes; the server then sees a gap in the channel's sequence numbers.
- `slow_renewals`: the server's answer to a renewal, and all that follows it, is held back
  that many seconds, as from a PLC whose CPU takes its time over RSA.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable

from tests.support.proxy import CuttableProxy

_HEADER = struct.Struct("<3scI")


class RenewalProxy(CuttableProxy):
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        super().__init__(target_port, host)
        self.drop_renewals = False
        self.slow_renewals = 0.0
        self.renewals_passed = 0  # renewal requests that reached the server
        self.renewals_dropped = 0
        self.answers_held = 0  # renewal answers held back by `slow_renewals`
        self._count = threading.Lock()

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}"

    def editor(self, to_server: bool) -> Callable[[bytes], bytes]:
        pending = bytearray()
        opened = False

        def renewal(frame: bytes) -> bool:
            """False to drop it."""
            with self._count:
                if to_server and self.drop_renewals:
                    self.renewals_dropped += 1
                    return False
                if to_server:
                    self.renewals_passed += 1
                    return True
                delay = self.slow_renewals
                self.answers_held += delay > 0
            time.sleep(delay)
            return True

        def edit(data: bytes) -> bytes:
            nonlocal opened
            pending.extend(data)
            out = bytearray()
            while len(pending) >= _HEADER.size:
                kind, _, size = _HEADER.unpack_from(pending)
                size = max(size, _HEADER.size)  # a garbled header: pass it on, do not spin
                if len(pending) < size:
                    break  # the rest of this frame is still on its way
                frame = bytes(pending[:size])
                del pending[:size]
                if kind == b"OPN" and opened and not renewal(frame):
                    continue
                opened = opened or kind == b"OPN"
                out += frame
            return bytes(out)

        return edit
