"""The demo: ``./scripts/demo`` (or ``python -m simulators.demo``).

Starts four child processes on free ports of 127.0.0.1 and shows the agent's telemetry
as a live table until Ctrl-C:

1. the Modbus pump simulator (``python -m simulators modbus --port 0``, values moving) and
   the OPC UA motor simulator (``python -m simulators opcua --port 0``, values moving too;
   it needs asyncua, a project dependency);
2. an MQTT broker: ``mosquitto`` with a generated config when it is installed, else (or
   with ``--embedded-broker``) amqtt, a pure-Python broker, run by this module in a child
   interpreter (``--serve-amqtt PORT``); amqtt speaks MQTT 3.1.1 only, so the agent and
   the viewer are told to use that;
3. the agent itself: ``python -m edge_agent run config/demo.yaml`` with the DEMO_* variables
   pointing it at the simulators and the broker, and its buffer and log in a temp dir.

This process subscribes to ``maintenance4/demo/#`` with paho-mqtt and redraws a table a few
times a second (plain snapshots every few seconds when stdout is not a terminal).  Array
values (motor-7's vibration waveform) are shown as a count and an RMS; a device with
indicators gets a line summing up its latest ``indicators`` message and one with its last
``events`` entry.

The children run in sessions of their own, so a Ctrl-C reaches only this process, which
then stops them in order (agent first, so it can say "offline" while the broker is still
there) and removes the temp dir.  On Linux they are also asked to get SIGTERM should this
process die without cleaning up (``kill -9``), so nothing is left behind listening.

The modules, in the order a run uses them: `children` (child processes and the start-up
errors), `brokers` (mosquitto's config, the embedded amqtt broker), `viewer` (the MQTT
subscriber) feeding `board` (the messages as per-device state), `render` (the board as
styled lines, pure) and `screen` (frames on stdout); `run` orchestrates them and `cli` is
the command line.
"""

from __future__ import annotations

from .cli import main

__all__ = ["main"]
