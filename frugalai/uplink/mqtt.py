"""MQTT uplink (paho-mqtt): QoS 1 publishes that leave the outbox only once the broker acked them.

URL grammar::

    mqtt://[user[:password]@]host[:port][?option=value&...]     plain TCP, port 1883 by default
    mqtts://[user[:password]@]host[:port][?option=value&...]    TLS, port 8883 by default

Options (all optional):

    topic=frugalai/{gateway}/{sensor}/event    event topic; fields {gateway} {sensor} {kind}
                                               {sensor_id}
    status_topic=frugalai/{gateway}/status     retained "online" (birth) / "offline" (last will)
    codec=NAME                                 a registered codec: json (default), binary...
    qos=1                                      1 (default) or 2; at-least-once needs >= 1
    client_id=frugalai-{gateway}               one per gateway: a broker drops the older of two
    ca=/path/ca.pem                            CA bundle to verify the broker (mqtts; default:
                                               the system store)
    cert=/path/client.pem, key=/path/key.pem   client certificate (mutual TLS)
    password_file=/etc/frugalai/mqtt.pass      password read from a file (keeps it out of TOML)
    password_env=FRUGALAI_MQTT_PASSWORD        password read from an environment variable
    keepalive=60                               seconds
    timeout=10                                 seconds to wait for the PUBACKs of one batch
    retry_min=1, retry_max=120                 reconnect backoff bounds, seconds (doubling)
    ha_discovery=0|1                           publish Home Assistant MQTT discovery configs
    ha_prefix=homeassistant                    discovery prefix
    fleet=0|1                                  the service publishes its retained fleet status
                                               on frugalai/fleet/{gateway}/status (docs/fleet.md)
    fleet_interval=60                          seconds between two unchanged fleet statuses

Example: ``mqtts://gw:secret@broker.example.org?ca=/etc/ssl/mairie-ca.pem&ha_discovery=1``.

Delivery contract (what :class:`~frugalai.pipeline.Pipeline` relies on): ``send(events)``
publishes the batch and waits for the broker's PUBACKs; it returns the events acknowledged, in
order, and the pipeline marks only those sent. When the broker is unreachable, refuses the
credentials or does not ack in time, ``send`` raises :class:`~frugalai.errors.UplinkError`
with the reason (last connection error included) and the events stay in the outbox. A batch
whose PUBACK was lost is sent again: delivery is at-least-once and receivers drop duplicates
by event ``id``.

A background thread (paho's network loop) keeps the connection: it reconnects with exponential
backoff, publishes the retained birth message on every connection and leaves the retained last
will ``offline`` with the broker, so a dead gateway is visible upstream within 1.5 keepalives.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

from frugalai.credentials import PASSWORD_OPTIONS, read_password
from frugalai.errors import ConfigError, UplinkError
from frugalai.events.event import Event
from frugalai.lograte import LogRate
from frugalai.mqtt_connect import note_reconnect_errors
from frugalai.registry import check_options, split_url
from frugalai.uplink.base import find_codec

log = logging.getLogger("frugalai.mqtt")

#: seconds a connection must stay up before an outage counts as over (its counts written, the
#: next fault news again): a broker flapping every few seconds is one episode, not a line a flap.

OPTIONS = {
    "topic": "event topic template, default frugalai/{gateway}/{sensor}/event",
    "status_topic": "birth/last-will topic, default frugalai/{gateway}/status",
    "codec": "a registered codec: json (default), binary...",
    "qos": "1 (default) or 2",
    "client_id": "MQTT client id, default frugalai-{gateway}",
    "ca": "CA file to verify the broker (mqtts)",
    "cert": "client certificate file (mqtts)",
    "key": "client key file (mqtts)",
    "password_file": "file holding the password",
    "password_env": "environment variable holding the password",
    "keepalive": "seconds, default 60",
    "timeout": "seconds to wait for PUBACKs, default 10",
    "retry_min": "first reconnect delay, seconds, default 1",
    "retry_max": "longest reconnect delay, seconds, default 120",
    "ha_discovery": "1 to publish Home Assistant discovery configs, default 0",
    "ha_prefix": "Home Assistant discovery prefix, default homeassistant",
    "fleet": "1: the service also publishes its fleet health status (docs/fleet.md)",
    "fleet_interval": "seconds between unchanged fleet statuses, default 60",
}

_TOPIC_FIELDS = {"gateway", "sensor", "kind", "sensor_id"}

#: a link that fails again within this many seconds of coming back is the same fault (one
#: episode in the log: a flapping broker is not three lines per outage).
LINK_SETTLE_S = 300.0


def _number(options: dict[str, str], name: str, default: float, key: Optional[str],
            lo: float = 0.0) -> float:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"option {name} must be a number, got {raw!r}", key=key) from None
    if value < lo:
        raise ConfigError(f"option {name} must be >= {lo:g}, got {raw!r}", key=key)
    return value


def _flag(options: dict[str, str], name: str, key: Optional[str]) -> bool:
    raw = options.get(name, "0").lower()
    if raw not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"option {name} must be 0 or 1, got {raw!r}", key=key)
    return raw in ("1", "true", "yes")


def _check_template(name: str, template: str, allowed: set[str], key: Optional[str]) -> None:
    fields = set(re.findall(r"{(\w*)}", template))
    bad = fields - allowed
    if bad or "+" in template or "#" in template:
        raise ConfigError(f"option {name}: {template!r} may use only "
                          f"{', '.join('{' + f + '}' for f in sorted(allowed))} and no MQTT "
                          f"wildcards", key=key)


def _node_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


class MqttSink:
    """Publishes events to an MQTT broker with QoS >= 1; see the module docstring.

    Build it with :meth:`from_url`; the constructor takes already-validated values.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        gateway: str = "frugalai",
        topic: str = "frugalai/{gateway}/{sensor}/event",
        status_topic: str = "frugalai/{gateway}/status",
        codec: str = "json",
        qos: int = 1,
        client_id: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        tls: Optional[ssl.SSLContext] = None,
        keepalive: int = 60,
        timeout: float = 10.0,
        retry_min: float = 1.0,
        retry_max: float = 120.0,
        ha_discovery: bool = False,
        ha_prefix: str = "homeassistant",
    ) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError as err:
            raise ConfigError("the mqtt uplink needs paho-mqtt: pip install 'frugalai[mqtt]'"
                              ) from err
        self._mqtt = mqtt
        self.host, self.port, self.gateway = host, port, gateway
        self.topic = topic
        self.status_topic = status_topic.format(gateway=gateway)
        self.codec, self.qos, self.timeout = codec, qos, timeout
        self._codec = find_codec(codec, key="codec")
        self.ha_discovery, self.ha_prefix = ha_discovery, ha_prefix
        self.client_id = (client_id or "frugalai-{gateway}").format(gateway=gateway)
        self.name = f"mqtt{'s' if tls else ''}://{host}:{port}"
        self.events_sent = 0
        self.bytes_sent = 0
        self.last_error: Optional[str] = None
        #: reasons a connection fails, each logged once then counted: a broker down for a
        #: night, retried every two minutes, is not a line per retry.
        self._link_log = LogRate(log, settle_s=LINK_SETTLE_S)
        self._connected = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._sensors: set[str] = set()
        self._announced: set[str] = set()

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
                             client_id=self.client_id,
                             protocol=mqtt.MQTTv311, clean_session=True)
        if username is not None:
            client.username_pw_set(username, password)
        if tls is not None:
            client.tls_set_context(tls)
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(max(1, int(retry_min)), max(1, int(retry_max)))
        # Bound what paho keeps in memory while the link is down: the outbox is the queue.
        client.max_queued_messages_set(1000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        note_reconnect_errors(client, self._note)
        self._client = client
        client.connect_async(host, port, keepalive)
        client.loop_start()

    # -- construction from a URL ---------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, *, key: Optional[str] = None, gateway: str = "frugalai",
                 **_: Any) -> MqttSink:
        """Build from ``mqtt[s]://...`` (connects in the background); ConfigError on a bad URL."""
        return cls(**cls.url_settings(url, key=key, gateway=gateway))

    @classmethod
    def validate_url(cls, url: str, *, key: Optional[str] = None, gateway: str = "frugalai",
                     **_: Any) -> None:
        """Every check ``from_url`` makes (password file, TLS files), without connecting."""
        cls.url_settings(url, key=key, gateway=gateway)
        try:
            import paho.mqtt.client  # noqa: F401
        except ImportError:
            raise ConfigError("the mqtt uplink needs paho-mqtt: pip install 'frugalai[mqtt]'",
                              key=key) from None

    @classmethod
    def url_settings(cls, url: str, *, key: Optional[str] = None,
                     gateway: str = "frugalai") -> dict[str, Any]:
        """The constructor's arguments from the URL; ConfigError (naming ``key``) if bad."""
        scheme, _rest, options = split_url(url, key=key)
        check_options(url, options, OPTIONS, key=key)
        parts = urlsplit(url)
        try:
            host, port = parts.hostname, parts.port
        except ValueError as err:
            raise ConfigError(f"bad port in {url!r}: {err}", key=key) from None
        if not host:
            raise ConfigError(f"expected {scheme}://[user[:password]@]host[:port][?options], "
                              f"got {url!r}", key=key)
        secure = scheme == "mqtts"
        port = port or (8883 if secure else 1883)
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if username is None and (password is not None
                                 or any(o in options for o in PASSWORD_OPTIONS)):
            raise ConfigError("a password needs a user name: mqtt://user@host?password_file=...",
                              key=key)
        password = read_password(password, options, key=key)
        codec = options.get("codec", "json")
        find_codec(codec, key=key)
        qos = options.get("qos", "1")
        if qos not in ("1", "2"):
            raise ConfigError(f"option qos must be 1 or 2 (at-least-once), got {qos!r}", key=key)
        topic = options.get("topic", "frugalai/{gateway}/{sensor}/event")
        status_topic = options.get("status_topic", "frugalai/{gateway}/status")
        _check_template("topic", topic, _TOPIC_FIELDS, key)
        _check_template("status_topic", status_topic, {"gateway"}, key)
        ha = _flag(options, "ha_discovery", key)
        if ha and codec != "json":
            raise ConfigError("ha_discovery=1 needs codec=json (Home Assistant reads JSON)",
                              key=key)
        if ha and ("{sensor}" not in topic or "{kind}" in topic or "{sensor_id}" in topic):
            raise ConfigError("ha_discovery=1 needs one topic per sensor: {sensor} in it, no "
                              "{kind} nor {sensor_id}", key=key)
        tls_opts = [n for n in ("ca", "cert", "key") if n in options]
        if tls_opts and not secure:
            raise ConfigError(f"option(s) {', '.join(tls_opts)} need the mqtts:// scheme",
                              key=key)
        tls = None
        if secure:
            try:
                tls = ssl.create_default_context(cafile=options.get("ca"))
                if "cert" in options:
                    tls.load_cert_chain(options["cert"], options.get("key"))
            except (OSError, ssl.SSLError) as err:
                raise ConfigError(f"TLS files: {err}", key=key) from None
        retry_min = _number(options, "retry_min", 1.0, key, lo=1)
        return dict(
            host=host, port=port, gateway=gateway, topic=topic, status_topic=status_topic, codec=codec,
            qos=int(qos), client_id=options.get("client_id"), username=username,
            password=password, tls=tls,
            keepalive=int(_number(options, "keepalive", 60, key, lo=5)),
            timeout=_number(options, "timeout", 10.0, key, lo=0.1),
            retry_min=retry_min,
            retry_max=_number(options, "retry_max", 120.0, key, lo=retry_min),
            ha_discovery=ha, ha_prefix=options.get("ha_prefix", "homeassistant"),
        )

    # -- connection callbacks (paho's thread) --------------------------------------------

    def _note(self, reason: str) -> None:
        if reason != self.last_error:
            self._link_log.warning(reason, "%s: %s", self.name, reason)
            self._link_log.log(logging.DEBUG, "down", "%s: down", self.name)  # episode marker
        self.last_error = reason

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any,
                    _props: Any = None) -> None:
        if reason.is_failure:
            text = str(reason)
            hint = (" (check the user name and password)"
                    if "author" in text.lower() or "password" in text.lower() else "")
            self._note(f"broker refused the connection: {text}{hint}")
            return
        # A broker that flaps (up 5 s, down 5 s) is one episode, logged once and then counted
        # every few minutes, not three lines per outage: the reasons and this good news end
        # only once the link stays up for LINK_SETTLE_S (benchmarks/soak.py, flapping).
        self._link_log.info("connected", "%s: connected as %s", self.name, self.client_id)
        self._link_log.recovered_all()
        self.last_error = None
        client.publish(self.status_topic, "online", qos=1, retain=True)
        with self._lock:
            self._announced.clear()
            sensors = sorted(self._sensors)
        for sensor in sensors:
            self._announce(sensor)
        self._connected.set()

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any,
                       _props: Any = None) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and not self._closed:  # after a refusal, keep the refusal's reason
            self._note(f"disconnected: {reason}")

    # -- Home Assistant discovery --------------------------------------------------------

    def discovery_configs(self, sensor: str) -> dict[str, dict[str, Any]]:
        """Topic -> retained discovery config for one sensor's entities."""
        node = _node_id(self.gateway)
        obj = _node_id(sensor)
        state = self.topic.format(gateway=self.gateway, sensor=sensor)
        device = {"identifiers": [f"frugalai_{node}"], "name": f"frugalai {self.gateway}",
                  "manufacturer": "frugalai", "model": "edge gateway"}
        common = {"state_topic": state, "availability_topic": self.status_topic,
                  "payload_available": "online", "payload_not_available": "offline",
                  "device": device}
        keep = "{{ this.state }}"
        return {
            f"{self.ha_prefix}/binary_sensor/{node}/{obj}_alarm/config": {
                **common, "name": f"{sensor} anomaly", "unique_id": f"frugalai_{node}_{obj}_alarm",
                "device_class": "problem",
                "value_template": "{% if value_json.kind == 'alarm' %}ON{% elif value_json.kind"
                                  " == 'clear' %}OFF{% else %}{{ 'ON' if this.state == 'on' "
                                  "else 'OFF' }}{% endif %}",
            },
            f"{self.ha_prefix}/sensor/{node}/{obj}_score/config": {
                **common, "name": f"{sensor} score", "unique_id": f"frugalai_{node}_{obj}_score",
                "state_class": "measurement",
                "value_template": "{% if value_json.kind in ('alarm', 'clear', 'class') %}"
                                  "{{ value_json.score }}{% else %}" + keep + "{% endif %}",
            },
            f"{self.ha_prefix}/sensor/{node}/{obj}_mean/config": {
                **common, "name": f"{sensor} period mean",
                "unique_id": f"frugalai_{node}_{obj}_mean", "state_class": "measurement",
                "value_template": "{% if value_json.stats is defined and value_json.stats.mean "
                                  "is not none %}{{ value_json.stats.mean }}{% else %}" + keep +
                                  "{% endif %}",
            },
        }

    def _announce(self, sensor: str) -> None:
        if not self.ha_discovery:
            return
        with self._lock:
            if sensor in self._announced:
                return
            self._announced.add(sensor)
        for topic, config in self.discovery_configs(sensor).items():
            self._client.publish(topic, json.dumps(config, separators=(",", ":")), qos=1,
                                 retain=True)

    # -- the sink interface ----------------------------------------------------------------

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (True) or ``timeout`` seconds passed (False)."""
        return self._connected.wait(timeout)

    def topic_for(self, event: Event) -> str:
        return self.topic.format(gateway=self.gateway, sensor=event.sensor, kind=event.kind,
                                 sensor_id=event.sensor_id)

    def send(self, events: Sequence[Event]) -> list[Event]:
        """Publish the events; return those the broker acknowledged (UplinkError if none)."""
        if self._closed:
            raise UplinkError(f"{self.name}: closed")
        if not events:
            return []
        if not self._connected.is_set():
            raise UplinkError(f"{self.name}: not connected ({self.last_error or 'connecting'});"
                              f" {len(events)} event(s) stay in the outbox")
        mqtt = self._mqtt
        published = []
        for event in events:
            if event.sensor not in self._sensors:
                with self._lock:
                    self._sensors.add(event.sensor)
            self._announce(event.sensor)
            payload = self._codec.encode(event)
            info = self._client.publish(self.topic_for(event), payload, qos=self.qos)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                break  # queue full: publish the rest later
            published.append((event, info, len(payload)))
        deadline = time.monotonic() + self.timeout
        delivered: list[Event] = []
        for event, info, size in published:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass  # not sent now (link dropped): paho resends it, the outbox keeps it
            if not info.is_published():
                continue
            delivered.append(event)
            self.events_sent += 1
            self.bytes_sent += size
        if not delivered:
            state = "connected" if self._connected.is_set() else (self.last_error or "link lost")
            raise UplinkError(f"{self.name}: no PUBACK within {self.timeout:g} s ({state}); "
                              f"{len(events)} event(s) stay in the outbox")
        return delivered

    def close(self) -> None:
        """Say ``offline`` (retained), disconnect, stop the network thread; safe twice."""
        if self._closed:
            return
        self._closed = True
        self._link_log.flush()  # the counts of the last episode
        try:
            if self._connected.is_set():
                info = self._client.publish(self.status_topic, "offline", qos=1, retain=True)
                try:
                    info.wait_for_publish(2.0)
                except (RuntimeError, ValueError):
                    pass
            self._client.disconnect()
        finally:
            self._client.loop_stop()
            self._connected.clear()

    def __enter__(self) -> MqttSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"MqttSink({self.name!r}, client_id={self.client_id!r}, topic={self.topic!r}, "
                f"codec={self.codec!r}, qos={self.qos})")
