"""Fixtures shared by every test: real brokers (tests/support), simulators, agent processes."""

from __future__ import annotations

from tests.support.agent import *  # noqa: F403
from tests.support.fixtures import *  # noqa: F403
