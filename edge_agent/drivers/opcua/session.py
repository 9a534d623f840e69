"""One asyncua session's life: build the client, open it securely, watch it, close it.

asyncua errors become the base.py tree here (`translate_errors`), in one place. `watch()`
reports, once, the moment a session can no longer be trusted, whatever the cause:

- the socket closed (asyncua's state observer),
- the keepalive probe went unanswered (asyncua's connection-lost callback),
- the secure channel could not be renewed (asyncua's renewal task ended with an error).

The last one matters because asyncua only logs it: the session goes on with keys the
server will stop accepting when they expire (up to 25 % of the lifetime later), and a
strict server then drops the channel or refuses every request. The driver reconnects at
once instead, with a new channel, session and subscription, and no agent restart.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.observer import Observer

from ...config.opcua import OpcUaDevice
from ..base import DeviceTimeout, DeviceUnavailable, DriverError
from .convert import status_name
from .security import SecurityRejected, apply_security

log = logging.getLogger(__name__)

_OWN_CERT_REFUSED = {
    "BadSecurityChecksFailed",
    "BadCertificateUntrusted",
    "BadCertificateInvalid",
    "BadCertificateUriInvalid",
    "BadCertificateTimeInvalid",
    "BadCertificateRevoked",
    "BadCertificateUseNotAllowed",
    "BadSecurityPolicyRejected",
}
_USER_REFUSED = {"BadUserAccessDenied", "BadIdentityTokenRejected", "BadIdentityTokenInvalid"}


@contextmanager
def translate_errors(device: OpcUaDevice, action: str) -> Iterator[None]:
    """asyncua / OS errors -> the base.py tree, in one place, messages naming the device."""
    where = f"{device.endpoint}: {action}"  # the runner's log line names the device
    try:
        yield
    except DriverError:
        raise
    except TimeoutError as err:
        raise DeviceTimeout(f"{where}: no answer within {device.timeout:g} s") from err
    except ua.UaStatusCodeError as err:
        name = status_name(err.code)
        if name in _OWN_CERT_REFUSED:
            cert = device.security.certificate
            raise SecurityRejected(
                f"{where}: the server refused this gateway's certificate ({name}): trust "
                f"{cert or 'it'} on the server (put it in the server's trusted certificates)"
            ) from err
        if name in _USER_REFUSED:
            who = f"user '{device.username}'" if device.username else "anonymous login"
            raise SecurityRejected(f"{where}: the server refused {who} ({name})") from err
        raise DeviceUnavailable(f"{where}: {name}") from err
    except (ConnectionError, OSError) as err:
        raise DeviceUnavailable(f"{where}: {err or type(err).__name__}") from err
    except ua.UaError as err:  # malformed answers, a certificate that changed mid-connect
        raise DeviceUnavailable(f"{where}: {err}") from err


def new_client(device: OpcUaDevice) -> Client:
    """An unconnected asyncua Client for `device`: timeouts, keepalive, user."""
    client = Client(
        device.endpoint,
        timeout=device.timeout,
        # the supervisor probes the server every interval with a read that times out after
        # the same interval: a dead server is noticed within `keepalive`
        watchdog_intervall=max(device.keepalive / 2, 0.05),
        auto_reconnect=False,
    )
    client.name = client.description = f"edge-agent {device.name}"
    client.application_uri = f"urn:{socket.gethostname()}:edge-agent"  # security: from the cert
    # the server forgets our session (and its subscription) this long after we vanish
    client.session_timeout = max(60_000, int(device.keepalive * 4_000))
    # the lifetime of the channel's keys: asyncua renews them at 75 % of what the server grants
    client.secure_channel_timeout = int(device.channel_lifetime * 1000)
    if device.username:
        client.set_user(device.username)
    if device.password is not None:
        client.set_password(device.password.get_secret_value())
    return client


async def open_session(client: Client, device: OpcUaDevice) -> None:
    """Security (pinning a trusted server certificate), then the session, within timeouts."""
    with translate_errors(device, "connect"):
        async with asyncio.timeout(device.timeout):
            await apply_security(client, device.security, device.endpoint)
        async with asyncio.timeout(device.timeout):
            await client.connect()


async def shutdown(client: Client, timeout: float, *, orderly: bool = True) -> None:
    """Close the session (the server deletes its subscription), the channel and the socket,
    if the session is alive and `orderly`; then stop asyncua's background tasks and drop the
    socket, which asyncua leaves open when it gave the session up itself. Never raises but
    for cancellation.
    """
    try:
        if orderly and client.state is UaClientState.CONNECTED:
            async with asyncio.timeout(timeout):
                await client.disconnect()
    except Exception as err:  # a dead or hung peer: nothing more to tell it
        log.debug("closing %s: %r", client, err)
    finally:
        await _abandon(client)


async def _abandon(client: Client) -> None:
    """Without a word to the server. asyncua has no public call for this: its own close path
    sends CloseSession first, which waits `timeout` for a hung server and logs warnings."""
    client.uaclient.request_disconnect()  # asyncua's loops stop at their next turn
    names = ("_supervisor_task", "_stale_watchdog_task", "_renew_channel_task")
    tasks = [getattr(client, name, None) for name in names]
    tasks.append(getattr(client.uaclient.session, "_publish_task", None))
    pending = [t for t in tasks if isinstance(t, asyncio.Task) and not t.done()]
    for task in pending:
        task.cancel()
    protocol = client.uaclient.protocol
    if protocol is not None and protocol.transport is not None:
        protocol.transport.close()
    client.disconnect_socket()
    await asyncio.gather(*pending, return_exceptions=True)


class _Watch(Observer):
    """Hears asyncua's connection state change the moment the socket closes."""

    def __init__(self, client: Client, lost: Callable[[str], None]) -> None:
        super().__init__()
        self.client = client
        self.lost = lost

    def observe_request(self, request: Any) -> AbstractContextManager[None]:
        return nullcontext()  # no per-request timing: the runner measures polls

    def on_state_change(self, state: UaClientState) -> None:
        if state is UaClientState.DISCONNECTED:
            self.lost("connection closed")
            # Stop the publish loop before it wakes to its failed request: it would log an
            # error with a traceback once a second until the session is closed.
            publisher = self.client.uaclient.session._publish_task
            if publisher is not None and not publisher.done():
                publisher.cancel()


def watch(client: Client, lost: Callable[[str], None]) -> None:
    """Call `lost(reason)` when the open session `client` dies (see the module docstring).
    `lost` may be called more than once; the caller keeps the first reason."""
    client.uaclient.observer = _Watch(client, lost)

    async def probe_failed(err: Exception) -> None:  # asyncua's supervisor task
        if isinstance(err, TimeoutError):
            lost("keepalive probe unanswered")
        else:
            lost(f"keepalive probe failed: {err or type(err).__name__}")

    client.connection_lost_callback = probe_failed
    renewal = client._renew_channel_task  # started by connect(); no public handle
    if renewal is not None:
        renewal.add_done_callback(lambda task: _renewal_ended(task, lost))


def _renewal_ended(task: asyncio.Task[None], lost: Callable[[str], None]) -> None:
    if task.cancelled():
        return  # we closed the session
    err = task.exception()  # also marks it retrieved: no "never retrieved" warning
    if err is None:
        return  # asyncua stopped the loop for a disconnect it was asked for
    if isinstance(err, TimeoutError):
        why = "no answer"
    elif isinstance(err, ua.UaStatusCodeError):
        why = status_name(err.code)
    else:
        why = str(err) or type(err).__name__
    lost(f"secure channel renewal failed ({why})")
