"""The OPC UA driver: points -> Readings, over the session that session.py opens and watches.

connect() opens one session (security, user), resolves every point's node once (resolve.py),
and creates
one subscription for the points in mode subscribe. poll() sends one Read request for the
points in mode poll and returns, after those readings, every data change the subscription
delivered since the last poll, in the server's order and with its source timestamps.

A point whose node is missing or unreadable does not fail the device: it is reported once
(`problems`, a warning) and read as bad on every poll. A dead session (socket closed, the
keepalive probe unanswered, the secure channel not renewed, the subscription timed out on
the server) makes poll() raise DeviceUnavailable: the runner backs off and calls connect(),
which builds a new channel, session and subscription. asyncua's own reconnection is left
off: one owner of retries, the runner. Data changes that arrived before the session died
but after the last poll are kept and returned by the first poll after the reconnect (they
happened; their timestamps say when).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import (
    DataChangeEvent,
    OverflowPolicy,
    StatusChangeEvent,
    Subscription,
)

from ...config.opcua import OpcUaDevice
from ...readings import Quality, Reading, now_ms
from ..base import DeviceTimeout, DeviceUnavailable
from .convert import (
    convert,
    deadband_filter,
    status_name,
    within_deadband,
)
from .resolve import Resolved, resolve
from .session import new_client, open_session, shutdown, translate_errors, watch

log = logging.getLogger(__name__)


class OpcUaDriver:
    """Reads one OPC UA server. Holds one session; the runner decides when to poll."""

    def __init__(self, device: OpcUaDevice, *, keep_raw: bool = False) -> None:
        self.device = device
        self.keep_raw = keep_raw
        self.problems: list[str] = []  # points that resolve to no readable node, as text
        self.requests = 0  # Read requests sent: for statistics and tests
        self.dropped = 0  # data changes lost because nobody polled for too long
        self.filtered = 0  # data changes within the deadband that the server sent anyway
        self._client: Client | None = None
        self._subscription: Subscription | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._polled: list[tuple[str, ua.ReadValueId]] = []
        self._failed: list[tuple[str, str]] = []
        self._subscribed = 0
        self._handles: dict[int, str] = {}
        self._bands: dict[int, float] = {}  # client handle -> deadband
        self._last: dict[int, tuple[Any, int]] = {}  # client handle -> last value, status
        self._changes: deque[Reading] = deque()
        self._max_changes = max(10_000, 100 * len(device.points))
        self._max_read = 0  # the server's OperationLimits (0: none)
        self._max_items = 0
        self._lost: str | None = None
        self._reported: set[str] = set()

    def counters(self) -> dict[str, int]:
        """Data changes dropped because nobody polled for them in time (lost: also logged),
        and changes within the deadband that the server sent anyway."""
        return {"changes_dropped": self.dropped, "changes_filtered": self.filtered}

    def describe(self) -> str:
        dev, sec = self.device, self.device.security
        security = "no security" if sec.mode == "None" else f"{sec.policy}/{sec.mode}"
        if self._client is None and not self._subscribed and not self._polled:
            subs = sum(1 for p in dev.points if p.mode == "subscribe")
            return (
                f"opcua {dev.endpoint} ({security}): {subs} subscribed, "
                f"{len(dev.points) - subs} polled points"
            )
        text = (
            f"opcua {dev.endpoint} ({security}): {self._subscribed} subscribed, "
            f"{len(self._polled)} polled points"
        )
        return text + (f", {len(self._failed)} unavailable" if self._failed else "")

    async def connect(self) -> None:
        await self.close()
        dev = self.device
        client = new_client(dev)
        self._client = client
        self._lost = None
        try:
            await open_session(client, dev)
            # watch only the session: the endpoint query before it opens and closes a socket
            watch(client, self._mark_lost(client))
            with translate_errors(dev, "resolving the points"):
                found = await resolve(client, dev)
            self.requests += found.reads
            self._max_read, self._max_items = found.max_read, found.max_items
            with translate_errors(dev, "creating the subscription"):
                await self._subscribe(client, [r for r in found.points if r.error is None])
        except BaseException as failure:
            if isinstance(failure, DeviceTimeout):
                self._lost = str(failure)  # a hung server is not asked to close the session
            await self.close()
            raise
        self._plan(found.points)

    def _mark_lost(self, client: Client) -> Callable[[str], None]:
        def lost(reason: str) -> None:
            if self._client is client and self._lost is None:
                self._lost = reason

        return lost

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        client, self._client = self._client, None
        self._subscription = None
        if consumer is not None:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
        if client is not None:  # a session that failed a request is not asked to close
            await shutdown(client, self.device.timeout, orderly=self._lost is None)

    async def poll(self) -> list[Reading]:
        client = self._client
        if client is None:
            raise DeviceUnavailable("not connected")
        self._check_alive(client)
        out: list[Reading] = []
        if self._polled:
            try:
                with translate_errors(self.device, "read"):
                    values = await self._read(client, [rv for _, rv in self._polled])
            except DeviceUnavailable as failure:
                self._lost = self._lost or str(failure)
                raise
            now = now_ms()
            raw = self.keep_raw
            for (name, _), dv in zip(self._polled, values, strict=True):
                value, quality, err, ts = convert(dv, now)
                code = dv.StatusCode.value if dv.StatusCode else 0
                status = (code,) if raw and code else None  # `read`'s RAW: a status, not Good
                out.append(Reading(name, value, quality, ts, err, status))
        if self._failed:
            ts = now_ms()
            out.extend(Reading(name, None, Quality.BAD, ts, err) for name, err in self._failed)
        changes = self._changes
        while changes:
            out.append(changes.popleft())
        return out

    def _check_alive(self, client: Client) -> None:
        reason = self._lost
        if reason is None and client.state is not UaClientState.CONNECTED:
            reason = f"session {client.state.value}"
        if reason is None and self._consumer is not None and self._consumer.done():
            reason = "subscription ended"
        if reason is not None:
            raise DeviceUnavailable(f"{self.device.endpoint}: {reason}")

    async def _read(self, client: Client, nodes: Sequence[ua.ReadValueId]) -> list[ua.DataValue]:
        step = self._max_read or len(nodes)
        out: list[ua.DataValue] = []
        for i in range(0, len(nodes), step):
            params = ua.ReadParameters(
                MaxAge=0,
                TimestampsToReturn=ua.TimestampsToReturn.Both,
                NodesToRead=list(nodes[i : i + step]),
            )
            self.requests += 1
            out.extend(await client.uaclient.read(params))
        if len(out) != len(nodes):
            raise ua.UaError(f"asked for {len(nodes)} values, got {len(out)}")
        return out

    # -- connect: resolve nodes, create the subscription ----------------------------------

    async def _subscribe(self, client: Client, points: list[Resolved]) -> None:
        dev = self.device
        wanted = [r for r in points if r.point.mode == "subscribe"]
        self._handles = {}
        self._bands = {}
        self._last = {}
        if not wanted:
            return
        interval = dev.poll_interval * 1000
        keepalive = max(1, math.ceil(dev.keepalive * 1000 / interval))
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=interval,
            RequestedLifetimeCount=keepalive * 6,  # the spec asks for at least 3x keepalive
            RequestedMaxKeepAliveCount=keepalive,
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
        )
        sub = await client.create_subscription(
            params, None, queue_maxsize=self._max_changes, overflow=OverflowPolicy.DROP_OLDEST
        )
        self._subscription = sub
        self._consumer = asyncio.create_task(self._consume(sub), name=f"opcua {dev.name}")
        requests = []
        for handle, r in enumerate(wanted, start=1):
            p = r.point
            sampling = (p.sampling_interval or dev.poll_interval) * 1000
            mparams = ua.MonitoringParameters(
                ClientHandle=handle,
                SamplingInterval=sampling,
                QueueSize=p.queue_size,
                DiscardOldest=True,
            )
            flt = deadband_filter(p.deadband)
            if flt is not None:
                mparams.Filter = flt
            requests.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(r.node, ua.AttributeIds.Value),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=mparams,
                )
            )
            self._handles[handle] = p.name
            if r.band is not None:
                self._bands[handle] = r.band
        step = self._max_items or len(requests)
        results = []
        for i in range(0, len(requests), step):
            results += await sub.create_monitored_items(requests[i : i + step])
        for r, result in zip(wanted, results, strict=True):
            if isinstance(result, ua.StatusCode):
                r.error = status_name(result.value)
                r.why = "the server refused to monitor it"

    def _plan(self, resolved: list[Resolved]) -> None:
        self._polled = [
            (r.point.name, ua.ReadValueId(r.node, ua.AttributeIds.Value))
            for r in resolved
            if r.error is None and r.point.mode == "poll"
        ]
        self._failed = [(r.point.name, r.error) for r in resolved if r.error]
        self._subscribed = sum(
            1 for r in resolved if r.error is None and r.point.mode == "subscribe"
        )
        self._report(resolved)

    def _report(self, resolved: list[Resolved]) -> None:
        """`problems` in config order; each logged once, not again at every reconnect."""
        self.problems = []
        for r in resolved:
            if r.error is None:
                continue
            address = r.point.node or r.point.browse_path
            text = f"point '{r.point.name}' ({address}): {r.error}"
            self.problems.append(f"{text}: {r.why}" if r.why else text)
        for text in self.problems:
            if text not in self._reported:
                self._reported.add(text)
                log.warning("%s: %s; it reads as bad until fixed", self.device.name, text)

    # -- the subscription's notifications --------------------------------------------------

    async def _consume(self, sub: Subscription) -> None:
        """Move notifications from asyncua's queue into ours as Readings, in order."""
        handles, changes, raw = self._handles, self._changes, self.keep_raw
        bands = self._bands
        async for event in sub:
            if isinstance(event, DataChangeEvent):
                item = event.data.monitored_item
                name = handles.get(item.ClientHandle)
                if name is None:
                    continue
                try:
                    value, quality, err, ts = convert(item.Value, now_ms())
                except Exception:  # a bug in convert must not end the subscription
                    log.exception("%s: cannot convert %r", self.device.name, item.Value)
                    value, quality, err, ts = None, Quality.BAD, "decode_error", now_ms()
                code = item.Value.StatusCode.value if item.Value.StatusCode else 0
                band = bands.get(item.ClientHandle)
                if band is not None and self._within(item.ClientHandle, band, value, code):
                    self.filtered += 1
                    continue
                if len(changes) >= self._max_changes:
                    changes.popleft()
                    if not self.dropped:
                        log.warning(
                            "%s: more than %d data changes waiting: dropping the oldest "
                            "(counted as changes_dropped on the health topic)",
                            self.device.name,
                            self._max_changes,
                        )
                    self.dropped += 1
                changes.append(
                    Reading(name, value, quality, ts, err, (code,) if raw and code else None)
                )
            elif isinstance(event, StatusChangeEvent):
                # BadTimeout (the server dropped it), GoodSubscriptionTransferred (another
                # session took it), BadShutdown (asyncua saw the connection go): no more data
                # asyncua also says BadShutdown for a connection it lost: keep the first cause
                status = status_name(event.notification.Status.value)
                self._lost = self._lost or f"subscription ended ({status})"

    def _within(self, handle: int, band: float, value: Any, code: int) -> bool:
        """The server should not have sent this change (its deadband): some servers ignore
        percent deadbands, so the driver applies it too, against the last value passed on.
        A change of status passes whatever the value (trigger StatusValue, Part 4 7.22.2);
        the low 16 bits are info bits, not the status."""
        status = code & 0xFFFF_0000
        last = self._last.get(handle)
        if last is not None and last[1] == status and within_deadband(band, last[0], value):
            return True
        self._last[handle] = (value, status)
        return False
