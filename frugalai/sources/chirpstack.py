"""LoRaWAN sensors through a network server: ChirpStack v4's MQTT integration.

URL grammar::

    chirpstack://<host>[:1883]?dev_eui=<16 hex>&decoder=<name>[&application=<uuid>]
                [&fport=N][&username=U][&password_env=VAR][&client_id=ID]

One flow = one device: its uplinks (``application/<app>/device/<devEui>/event/up``, the
application's ``+`` when not given) are decoded by the named payload decoder (``fb``,
``lpp``) into Readings named after the flow, with ``rssi_dbm``/``snr_db`` of the best gateway and
``f_cnt``. The subscription covers the whole application so that uplinks of devices no flow
knows are seen and counted (``unknown_devices``), not silently ignored. The password is read
from the environment variable ``password_env`` names, never from the URL.

Frame counters: a gap counts ``lost_uplinks``; a repeated or slightly older fCnt is a duplicate
(counted, skipped); a counter back at 0 is a rejoin (``fcnt_resets``). Bad JSON or base64 and
payloads the decoder refuses are counted in ``frames_bad`` and skipped. paho reconnects by
itself (exponential backoff from a random 1-3 s to 60 s); each outage is logged once.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

from frugalai import registry
from frugalai.credentials import read_password
from frugalai.errors import ConfigError, DecodeError, SourceError
from frugalai.protocols.chirpstack import UPLINK_TOPIC, FCntTracker, parse_uplink
from frugalai.protocols.payloads import PayloadDecoder, split
from frugalai.reading import Reading
from frugalai.registry import check_options, split_url
from frugalai.sources.base import Clock, OutageLog, SourceStats

log = logging.getLogger("frugalai.sources")

OPTIONS = {
    "dev_eui": "the device's DevEUI, 16 hex digits",
    "decoder": "payload decoder name (fb, lpp)",
    "application": "ChirpStack application id (default: every application, '+')",
    "fport": "only this FPort (default: any)",
    "username": "MQTT user name",
    "password_env": "environment variable holding the MQTT password",
    "client_id": "MQTT client id (default: frugalai-<dev_eui>)",
}


@dataclass
class ChirpStackStats(SourceStats):
    """SourceStats plus the LoRaWAN side."""

    uplinks: int = 0
    lost_uplinks: int = 0
    duplicates: int = 0
    fcnt_resets: int = 0
    unknown_devices: int = 0
    other_fport: int = 0


class ChirpStackSource:
    """Subscribes to ChirpStack uplink events and yields decoded Readings."""

    def __init__(
        self,
        host: str,
        port: int = 1883,
        *,
        sensor: str,
        dev_eui: str,
        decoder: PayloadDecoder,
        application: str = "+",
        fport: Optional[int] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        client_id: Optional[str] = None,
        clock: Clock = time.time,
        max_queue: int = 1000,
    ) -> None:
        dev_eui = dev_eui.lower()
        if len(dev_eui) != 16 or any(c not in "0123456789abcdef" for c in dev_eui):
            raise ConfigError(f"dev_eui must be 16 hex digits, got {dev_eui!r}", key="dev_eui")
        self.host, self.port = host, port
        self.sensor = sensor
        self.dev_eui = dev_eui
        self.decoder = decoder
        self.application = application
        self.fport = fport
        self.username, self.password = username, password
        self.client_id = client_id or f"frugalai-{dev_eui}"
        self.clock = clock
        self.topic = UPLINK_TOPIC.format(application=application, dev_eui="+")
        self.stats = ChirpStackStats()
        self.fcnt = FCntTracker()
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue(max_queue)
        self._outage = OutageLog(f"chirpstack {host}:{port}", self.stats)
        self._client: Any = None
        self._lock = threading.Lock()
        #: set once the broker confirmed the subscription (tests and health checks wait on it)
        self.subscribed = threading.Event()

    @classmethod
    def from_url(cls, url: str, *, sensor: str, key: Optional[str] = None,
                 **kwargs: Any) -> ChirpStackSource:
        """Build from ``chirpstack://...``; ConfigError (naming ``key``) on a bad URL."""
        _, rest, options = split_url(url, key=key)
        check_options(url, options, OPTIONS, key=key)
        host, _, port_s = rest.partition(":")
        if not host:
            raise ConfigError(f"chirpstack URL names no host: {url!r}", key=key)
        for needed in ("dev_eui", "decoder"):
            if needed not in options:
                raise ConfigError(f"option {needed!r} is required in {url!r} ({OPTIONS[needed]})",
                                  key=key)
        decoder = registry.decoders.get(options["decoder"], key=key)
        password = read_password(None, options, key=key)
        try:
            return cls(host, int(port_s or "1883"), sensor=sensor, dev_eui=options["dev_eui"],
                       decoder=decoder, application=options.get("application", "+"),
                       fport=int(options["fport"]) if "fport" in options else None,
                       username=options.get("username"), password=password,
                       client_id=options.get("client_id"), **kwargs)
        except ValueError as err:
            raise ConfigError(f"bad option in {url!r}: {err}", key=key) from None
        except ConfigError as err:
            raise ConfigError(f"{err} (in {url!r})", key=key) from None

    # --- MQTT (paho's network thread) -------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            self._outage.down(SourceError(f"broker refused the connection: {reason}"))
            return
        client.subscribe(self.topic, qos=1)
        self._outage.up()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        if self._client is not None:  # not our own close()
            self.subscribed.clear()
            self._outage.down(SourceError(f"disconnected from {self.host}:{self.port}: {reason}"))

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self._queue.put_nowait((message.topic, bytes(message.payload)))
        except queue.Full:  # the flow thread is stuck: count the loss, never block paho
            self.stats.frames_bad += 1
            self.stats.last_error = "receive queue full: uplink dropped"

    def open(self) -> None:
        """Start the MQTT client (it connects and reconnects in its own thread)."""
        try:
            import paho.mqtt.client as mqtt
        except ImportError as err:
            raise SourceError("chirpstack:// needs paho-mqtt: pip install 'frugalai[mqtt]'") \
                from err
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,  # type: ignore[attr-defined]
                             client_id=self.client_id,
                             clean_session=False)
        if self.username:
            client.username_pw_set(self.username, self.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = lambda *_: self.subscribed.set()
        # paho doubles the delay up to the cap; a random first delay spreads the reconnects
        # of many gateways after a broker restart (paho has no jitter of its own)
        client.reconnect_delay_set(random.randint(1, 3), 60)
        client.connect_async(self.host, self.port, keepalive=60)
        client.loop_start()
        self._client = client

    # --- the flow's thread ------------------------------------------------------------------
    def readings(self, stop: threading.Event) -> Iterator[Reading]:
        """Yield Readings until ``stop`` is set."""
        with self._lock:
            if self._client is None:
                self.open()
        while not stop.is_set():
            try:
                topic, raw = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            reading = self.handle(topic, raw)
            if reading is not None:
                yield reading

    def handle(self, topic: str, raw: bytes) -> Optional[Reading]:
        """One MQTT message -> a Reading, or None (counted) when it is not one."""
        self.stats.bytes_read += len(raw)
        try:
            up = parse_uplink(raw, topic)
        except DecodeError as err:
            self._bad(err)
            return None
        if up.dev_eui != self.dev_eui:
            self.stats.unknown_devices += 1
            return None
        if self.fport is not None and up.f_port != self.fport:
            self.stats.other_fport += 1
            return None
        status, lost = self.fcnt.update(up.dev_eui, up.f_cnt)
        if status == "duplicate":
            self.stats.duplicates += 1
            return None
        if status == "reset":
            self.stats.fcnt_resets += 1
        self.stats.lost_uplinks += lost
        self.stats.uplinks += 1
        try:
            values, units, _ = split(self.decoder(up.data))
        except (DecodeError, ValueError, ArithmeticError) as err:  # a plugin decoder's too
            self._bad(err)
            return None
        if up.rssi is not None:
            values["rssi_dbm"], units["rssi_dbm"] = up.rssi, "dBm"
        if up.snr is not None:
            values["snr_db"], units["snr_db"] = up.snr, "dB"
        values["f_cnt"] = float(up.f_cnt)
        reading = Reading(self.clock(), self.sensor, values, units,
                          {"dev_eui": up.dev_eui, "f_port": str(up.f_port)})
        self.stats.frames_ok += 1
        self.stats.readings += 1
        self.stats.last_reading_ts = reading.ts
        self.stats.last_received = time.time()
        return reading

    def _bad(self, err: BaseException) -> None:
        self.stats.frames_bad += 1
        self.stats.last_error = str(err)
        return None

    def close(self) -> None:
        """Disconnect; safe to call twice."""
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def __enter__(self) -> ChirpStackSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"ChirpStackSource({self.host}:{self.port}, dev_eui={self.dev_eui!r}, "
                f"topic={self.topic!r})")
