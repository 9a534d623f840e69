"""Pure parts of the OPC UA driver: the deadband the driver applies when a server does not."""

from __future__ import annotations

from typing import Any

import pytest

from edge_agent.drivers.opcua.convert import within_deadband


@pytest.mark.parametrize(
    ("band", "old", "new", "within"),
    [
        (2.0, 50.0, 51.9, True),
        (2.0, 50.0, 52.0, True),  # "exceeds" means more than the band (Part 8, 6.2)
        (2.0, 50.0, 52.01, False),
        (2.0, 50.0, 47.5, False),  # downwards too
        (0.0, 7, 7, True),
        (0.0, 7, 8, False),
        (2.0, 1, 2.5, True),  # int and float mix
        (2.0, [1.0, 2.0], [2.0, 3.0], True),
        (2.0, [1.0, 2.0], [1.0, 4.5], False),  # one element out: the array passes
        (2.0, [1.0, 2.0], [1.0], False),  # a new length always passes
        (2.0, [], [], True),
        (2.0, True, True, True),
        (2.0, True, False, False),  # booleans are not numbers to a deadband
        (2.0, "a", "a", False),  # nor strings: every change passes
        (2.0, None, 1.0, False),  # after a bad reading
        (2.0, 1.0, None, False),
    ],
)
def test_within_deadband(band: float, old: Any, new: Any, within: bool) -> None:
    assert within_deadband(band, old, new) is within
