"""Fleet health over MQTT: the gateway's retained status publisher and the operator's reader.

The daemon (``frugalai run``) publishes its status snapshot through :class:`HealthPublisher`
at each status interval when an MQTT uplink carries ``fleet=1`` (same broker and credentials,
its own connection with the client id ``frugalai-fleet-<gateway>``, whose last will marks the
gateway offline). :func:`read_statuses` is what ``frugalai fleet status`` does: subscribe to
``frugalai/fleet/+/status`` and take the retained messages.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from frugalai import digest as hashing
from frugalai.errors import ConfigError
from frugalai.fleet import status as fstatus
from frugalai.fleet.link import OPTIONS as LINK_OPTIONS
from frugalai.fleet.link import Broker, Link, parse_broker
from frugalai.fleet.topics import STATUS_FILTER, gateway_of, status_topic

if TYPE_CHECKING:
    from frugalai.config import Config

log = logging.getLogger("frugalai.fleet")


def model_info(models_dir: Union[str, Path], name: str) -> dict[str, str]:
    """{"version", "sha256"} of the bundle the live name ``name`` points to (sha256 of its
    card, which hashes every file); {} for a built-in or a missing bundle."""
    path = Path(models_dir) / name
    try:
        card = (path.resolve(strict=True) / "card.json").read_bytes()
    except OSError:
        return {}
    from frugalai.errors import ModelError
    from frugalai.runtime.card_schema import parse_card

    try:  # the schema first: a version goes into retained status messages
        version = str(parse_card(card).get("version", ""))
    except ModelError:
        version = ""
    return {"version": version, "sha256": hashing.sha256(card).hexdigest()}


def installed_models(models_dir: Union[str, Path]) -> dict[str, dict[str, str]]:
    """Every bundle installed by name in ``models_dir`` (live links and plain directories)."""
    out = {}
    root = Path(models_dir)
    if root.is_dir():
        for p in sorted(root.iterdir()):
            if not p.name.startswith(".") and (p / "card.json").is_file():
                out[p.name] = model_info(root, p.name)
    return out


def uplink_broker(url: str) -> Broker:
    """The broker of an MQTT uplink URL, its event-only options left out."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query) if k in LINK_OPTIONS]
    return parse_broker(urlunsplit(parts._replace(query=urlencode(kept))), key="uplink.url")


class HealthPublisher:
    """Publishes a gateway's retained status; its last will says ``offline``."""

    def __init__(self, broker: Broker, gateway: str, models_dir: Union[str, Path] = "models",
                 interval_s: float = 0.0) -> None:
        self.gateway = gateway
        #: publish at most this often unless something a verdict depends on changed (a
        #: status every 10 s would cost ~5 MB a day on a metered link; see docs/fleet.md)
        self.interval_s = interval_s
        self._last_at = float("-inf")
        self._last_key = ""
        self.models_dir = Path(models_dir)
        self.topic = status_topic(gateway)
        self.published = 0
        self.link = Link(broker, f"frugalai-fleet-{gateway}",
                         will=(self.topic, fstatus.offline_payload(gateway, "connection lost "
                                                                            "(last will)")),
                         on_connect=self._on_connect)

    def _on_connect(self, _link: Link) -> None:
        # after a reconnect the broker may hold our will ("offline") or nothing: the next
        # status goes out whatever the interval
        self._last_key = ""

    def publish_status(self, status: dict[str, Any]) -> None:
        """Hand the status to paho (no wait: the caller may be the watchdog's thread);
        while disconnected it is skipped, the next one follows in one interval."""
        if not self.link.connected.is_set():
            return
        key = json.dumps([status.get(k) for k in ("healthy", "state", "flows", "models")],
                         sort_keys=True, default=str)
        now = time.monotonic()
        if key == self._last_key and now - self._last_at < self.interval_s:
            return
        self._last_key, self._last_at = key, now
        if self.interval_s > float(status.get("status_interval_s") or 0):
            status = {**status, "status_interval_s": self.interval_s}
        self.link.client.publish(self.topic, fstatus.encode(status), qos=1, retain=True)
        self.published += 1

    def publish(self, snap: dict[str, Any]) -> None:
        """Publish the daemon's status snapshot (see :func:`status.from_snapshot`)."""
        names = {f.get("model") for f in (snap.get("flows") or {}).values()}
        models = {n: model_info(self.models_dir, n) for n in sorted(x for x in names if x)}
        self.publish_status(fstatus.from_snapshot(self.gateway, snap,
                                                  {k: v for k, v in models.items() if v}))

    def close(self, reason: str = "stopped") -> None:
        """Say offline (retained) and disconnect: a clean stop sends no will."""
        try:
            if self.link.connected.is_set():
                self.link.publish(self.topic, fstatus.offline_payload(self.gateway, reason),
                                  retain=True, timeout=2.0)
        except OSError as err:
            log.warning("fleet status: could not say offline: %s", err)
        finally:
            self.link.close()


def for_config(config: Config) -> Optional[HealthPublisher]:
    """A publisher when an MQTT uplink has ``fleet=1`` (None otherwise); never raises on a
    broker that is down (paho reconnects in the background). ``fleet_interval=S`` (default
    60) bounds how often an unchanged status is published again."""
    for uplink in config.uplink:
        parts = urlsplit(uplink.url)
        options = dict(parse_qsl(parts.query))
        if parts.scheme in ("mqtt", "mqtts") and options.get("fleet") in ("1", "true", "yes"):
            try:
                interval = float(options.get("fleet_interval", "60"))
            except ValueError:
                raise ConfigError(f"fleet_interval must be a number of seconds, got "
                                  f"{options['fleet_interval']!r}", key="uplink.url") from None
            from frugalai.config import installed_models_dir

            # the directory run looks bundles up in (`<state_dir>/models` when the config
            # leaves models_dir unset; "" would have read the working directory)
            return HealthPublisher(uplink_broker(uplink.url), config.gateway.id,
                                   str(installed_models_dir(config)), interval_s=interval)
    return None


def read_statuses(broker: Broker, wait_s: float = 2.0, quiet_s: float = 0.5,
                  client_id: Optional[str] = None) -> dict[str, bytes]:
    """{gateway: last status payload} from the retained messages (and any that arrive in
    ``wait_s``); returns early once no message came for ``quiet_s`` after the first."""
    got: dict[str, bytes] = {}
    last = [0.0]
    lock = threading.Lock()

    def on_message(topic: str, payload: bytes, _retain: bool) -> None:
        gw = gateway_of(topic)
        if gw is not None and payload:
            with lock:
                got[gw] = payload
                last[0] = time.monotonic()

    link = Link(broker, client_id or f"frugalai-fleet-status-{time.time_ns()}",
                on_message=on_message, subscriptions=((STATUS_FILTER, 1),))
    try:
        link.wait_connected(10)
        start = time.monotonic()
        while time.monotonic() - start < wait_s:
            time.sleep(0.05)
            with lock:
                if last[0] and time.monotonic() - last[0] > quiet_s:
                    break
    finally:
        link.close()
    return got
