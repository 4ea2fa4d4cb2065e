"""MQTT connections for the fleet tools (collector, health publisher, agent, operator CLI).

Broker URL grammar (the MQTT uplink's, without its event options)::

    mqtt://[user[:password]@]host[:port][?password_file=...&password_env=...]
    mqtts://[user[:password]@]host[:port][?ca=...&cert=...&key=...&password_file=...]

paho-mqtt is imported late: a gateway that does not use the fleet features never loads it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import parse_qsl, unquote, urlsplit

from frugalai.credentials import read_password
from frugalai.errors import ConfigError, UplinkError
from frugalai.mqtt_connect import note_reconnect_errors

log = logging.getLogger("frugalai.fleet")

OPTIONS = ("ca", "cert", "key", "password_file", "password_env", "keepalive")


@dataclass(frozen=True)
class Broker:
    """Where and how to connect."""

    host: str
    port: int
    username: Optional[str] = None
    password: Optional[str] = None
    tls: bool = False
    ca: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    keepalive: int = 30

    @property
    def name(self) -> str:
        return f"mqtt{'s' if self.tls else ''}://{self.host}:{self.port}"


def parse_broker(url: str, key: str = "--broker") -> Broker:
    """A :class:`Broker` from a URL; ConfigError naming the problem."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"expected mqtt://host[:port] or mqtts://host[:port], got {url!r}",
                          key=key)
    try:
        host, port = parts.hostname, parts.port
    except ValueError as err:
        raise ConfigError(f"bad port in {url!r}: {err}", key=key) from None
    if not host:
        raise ConfigError(f"no host in {url!r}", key=key)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} in {url!r}; known: "
                          f"{', '.join(OPTIONS)}", key=key)
    tls = parts.scheme == "mqtts"
    if not tls and any(o in options for o in ("ca", "cert", "key")):
        raise ConfigError("options ca/cert/key need the mqtts:// scheme", key=key)
    password = read_password(unquote(parts.password) if parts.password is not None else None,
                             options, key=key)
    try:
        keepalive = int(options.get("keepalive", "30"))
    except ValueError:
        raise ConfigError(f"keepalive must be an integer, got {options['keepalive']!r}",
                          key=key) from None
    return Broker(host, port or (8883 if tls else 1883),
                  unquote(parts.username) if parts.username else None, password, tls,
                  options.get("ca"), options.get("cert"), options.get("key"), max(5, keepalive))


class Link:
    """One paho client with a background network loop and a 'connected' flag.

    Args:
        broker: where to connect.
        client_id: the MQTT client id (fixed for a persistent session).
        clean_session: False keeps the subscriptions and queued QoS 1 messages across
            disconnections (the collector).
        will: (topic, payload) retained last will, published by the broker if we vanish.
        on_message: callback(topic, payload, retain) called on paho's thread; the PUBACK of a
            QoS 1 message is sent only after it returns (so a handler that stores the message
            before returning never loses it).
        subscriptions: (filter, qos) pairs, (re)subscribed on every connection.
        mqtt5: speak MQTT 5 (shared subscriptions ``$share/<group>/...`` are part of it); a
            persistent session (``clean_session=False``) then asks the broker to keep it
            forever (session expiry 0xFFFFFFFF), as MQTT 3.1.1's clean_session=false does.
        manual_ack: the PUBACK is sent when the handler calls the ``ack`` it is given as a
            fourth argument, ``on_message(topic, payload, retain, ack)``, from any thread:
            a collector acknowledges a batch of messages once it has committed them.
        receive_maximum: (MQTT 5) how many unacknowledged QoS 1 messages the broker may have
            in flight to us (the broker's own ``max_inflight_messages`` caps it too).
    """

    def __init__(self, broker: Broker, client_id: str, *, clean_session: bool = True,
                 will: Optional[tuple[str, bytes]] = None,
                 on_message: Any = None, subscriptions: tuple[tuple[str, int], ...] = (),
                 on_connect: Any = None, mqtt5: bool = False, manual_ack: bool = False,
                 receive_maximum: Optional[int] = None) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError as err:
            raise ConfigError("the fleet tools need paho-mqtt: pip install 'frugalai[mqtt]'"
                              ) from err
        self.broker = broker
        self.connected = threading.Event()
        self.connections = 0  # successful connections so far (reconnects included)
        self.last_error: Optional[str] = None
        self._subscriptions = list(subscriptions)
        self._user_on_message = on_message
        self._user_on_connect = on_connect
        self._manual_ack = manual_ack
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
                             client_id=client_id,
                             protocol=mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311,
                             clean_session=None if mqtt5 else clean_session,
                             manual_ack=manual_ack)
        if broker.username is not None:
            client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            import ssl  # here, not at the top: a gateway without TLS never loads libssl

            try:
                ctx = ssl.create_default_context(cafile=broker.ca)
                if broker.cert:
                    ctx.load_cert_chain(broker.cert, broker.key)
            except (OSError, ssl.SSLError) as err:
                raise ConfigError(f"TLS files: {err}", key="--broker") from None
            client.tls_set_context(ctx)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.reconnect_delay_set(1, 10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        note_reconnect_errors(client, self._note_error)
        self.client = client
        if mqtt5:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if not clean_session:
                props.SessionExpiryInterval = 0xFFFFFFFF
            if receive_maximum is not None:
                props.ReceiveMaximum = receive_maximum
            client.connect_async(broker.host, broker.port, broker.keepalive,
                                 clean_start=clean_session, properties=props)
        else:
            client.connect_async(broker.host, broker.port, broker.keepalive)
        client.loop_start()

    def _note_error(self, reason: str) -> None:
        self.last_error = reason

    def _on_connect(self, client: Any, _u: Any, _flags: Any, reason: Any, _p: Any = None
                    ) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            return
        self.last_error = None
        self.connections += 1
        for topic, qos in self._subscriptions:
            client.subscribe(topic, qos)
        if self._user_on_connect is not None:
            try:
                self._user_on_connect(self)
            except Exception:  # never kill paho's network thread
                log.exception("%s: on_connect handler failed", self.broker.name)
        self.connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        self.connected.clear()
        if reason is not None and getattr(reason, "is_failure", False):
            self.last_error = f"disconnected: {reason}"

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        # an exception here ends paho's network thread before the PUBACK is sent: the
        # broker keeps the message for the session (the collector relies on this when it
        # cannot store one, and then stops with an error)
        if self._user_on_message is None:
            return
        if self._manual_ack:
            mid, qos, client = msg.mid, msg.qos, self.client

            def ack() -> None:
                client.ack(mid, qos)

            self._user_on_message(msg.topic, bytes(msg.payload), bool(msg.retain), ack)
        else:
            self._user_on_message(msg.topic, bytes(msg.payload), bool(msg.retain))

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self._subscriptions.append((topic, qos))
        if self.connected.is_set():
            self.client.subscribe(topic, qos)

    def wait_connected(self, timeout: float) -> None:
        if not self.connected.wait(timeout):
            raise UplinkError(f"{self.broker.name}: not connected within {timeout:g} s "
                              f"({self.last_error or 'no answer'})")

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1,
                timeout: float = 10.0) -> None:
        """Publish and wait for the PUBACK; UplinkError if it does not come."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as err:
            raise UplinkError(f"{self.broker.name}: publish to {topic} failed: {err}") from err
        if not info.is_published():
            raise UplinkError(f"{self.broker.name}: no PUBACK for {topic} within {timeout:g} s")

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
            self.connected.clear()
