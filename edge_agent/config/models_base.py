"""Shared by the config models: strictness and name patterns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

SLUG = r"^[a-z0-9][a-z0-9-]*$"
NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"  # safe as an MQTT topic level and a JSON key


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
