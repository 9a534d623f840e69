"""Store-and-forward: every outgoing message is committed here before it is published."""

from .sqlite import BufferStats, SqliteBuffer, StoredMessage

__all__ = ["BufferStats", "SqliteBuffer", "StoredMessage"]
