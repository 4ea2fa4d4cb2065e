"""Why an MQTT connection attempt failed, in words an operator can act on.

paho's background loop retries a lost connection by itself and swallows the reason each attempt
failed; the MQTT uplink and the fleet link both want it for their status and error messages.
No paho import here: the helpers only wrap the client they are given.
"""

from __future__ import annotations

import sys
from typing import Any, Callable


def describe_connect_error(err: BaseException) -> str:
    """One line for a failed connection attempt.

    >>> describe_connect_error(ConnectionRefusedError())
    'connection refused (is the broker running, is the port right?)'
    """
    # ssl is not imported here (it weighs ~4 MB of a gateway's memory, libssl included, and a
    # gateway without TLS never needs it): a TLS error exists only once something imported it.
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate was not accepted ({err.verify_message}); check ca="
    if ssl is not None and isinstance(err, ssl.SSLError):
        return f"TLS handshake failed: {getattr(err, 'reason', None) or err}"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (is the broker running, is the port right?)"
    if isinstance(err, TimeoutError):
        return "connection timed out"
    return f"{type(err).__name__}: {err}"


def note_reconnect_errors(client: Any, note: Callable[[str], None]) -> None:
    """Make ``client.reconnect`` (what paho's loop calls) pass each failure's reason to
    ``note`` before raising it as before."""
    reconnect = client.reconnect

    def reconnect_noting_errors() -> Any:
        try:
            return reconnect()
        except OSError as err:
            note(describe_connect_error(err))
            raise

    client.reconnect = reconnect_noting_errors
