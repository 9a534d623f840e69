"""Store-and-forward: every outgoing message is committed here before it is published."""

from .sqlite import SqliteBuffer
from .store import BufferStats, StoredMessage

__all__ = ["BufferStats", "SqliteBuffer", "StoredMessage"]
