"""The gateway's side of a rollout: ``frugalai fleet agent``.

It subscribes to the retained manifest, verifies it (Ed25519 with the configured public key,
schema, targets, no replay, no downgrade), fetches the bundle's chunks, checks every hash,
installs through :func:`frugalai.service.models.install` (copy into the store, atomic switch of
the live name, load and self-test, automatic rollback on failure) and reports the outcome,
retained, on ``frugalai/fleet/<gateway>/rollout``. When the manifest states an alarm bound
(``watch``), the outcome is ``installed`` with ``final: false`` first, then ``healthy`` once
the window passed, or ``rolled_back`` as soon as the gateway's alarms pass the bound
(:mod:`frugalai.fleet.watch`). Nothing from a manifest is executed: it only names files,
sizes, hashes and versions.

Work happens on one worker thread (an install with its self-test can take seconds; paho's
network thread must keep the connection alive meanwhile). The last manifest handled is kept
in ``<state_dir>/fleet-agent.json`` so a retained manifest seen again after a restart is not
applied twice.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional, Union

from frugalai import __version__
from frugalai.errors import ModelError
from frugalai.fileio import atomic_write
from frugalai.fleet import manifest as mf
from frugalai.fleet import status as fstatus
from frugalai.fleet.health import installed_models, model_info
from frugalai.fleet.link import Broker, Link
from frugalai.fleet.topics import BUNDLE_ROOT, MANIFEST, bundle_topic, report_topic, status_topic
from frugalai.fleet.watch import AlarmWatch
from frugalai.service import models as mmodels

log = logging.getLogger("frugalai.fleet.agent")

STATE_FILE = "fleet-agent.json"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead to plain HTTP or another host: refused, the URL is the signed one."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch_https(url: str, size: int, cafile: Optional[str] = None, timeout: float = 60.0
                ) -> bytes:
    """The bytes at ``url`` (https only, no redirect, at most ``size`` bytes read); OSError
    with the reason otherwise. The caller checks their sha256 against the manifest."""
    if not url.startswith("https://"):
        raise OSError(f"not an https URL: {url!r}")
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as err:
        raise OSError(f"CA file: {err}") from None
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                         _NoRedirect())
    try:
        with opener.open(url, timeout=timeout) as resp:
            data: bytes = resp.read(size + 1)
    except urllib.error.HTTPError as err:
        raise OSError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, ssl.SSLError, TimeoutError) as err:
        raise OSError(f"{url}: {getattr(err, 'reason', err)}") from None
    if len(data) > size:
        raise OSError(f"{url}: more than the {size} bytes the manifest states")
    return data


class Agent:
    """One gateway's rollout agent (and, with ``status_interval`` > 0, its status publisher
    when no daemon publishes one).

    Args:
        broker: the fleet broker.
        gateway: this gateway's id (its MQTT user name under the recommended ACL).
        models_dir: where bundles are installed (``gateway.models_dir``).
        public_key: 32 raw bytes of the operator's Ed25519 key; manifests signed otherwise are
            refused.
        state_dir: where the agent keeps the last manifest it handled.
        status_interval: seconds between status publications; 0: none.
        on_change: called after a model changed (the CLI asks the service to reload).
        loader: the load-and-self-test function (models.load_check).
        https_ca: CA file to verify the bundle server of an https manifest (default: the
            system store).
    """

    def __init__(self, broker: Broker, gateway: str, models_dir: Union[str, Path],
                 public_key: bytes, state_dir: Union[str, Path], *,
                 status_interval: float = 0.0, on_change: Optional[Callable[[], Any]] = None,
                 loader: mmodels.Loader = mmodels.load_check,
                 https_ca: Optional[str] = None) -> None:
        self.gateway = gateway
        self.https_ca = https_ca
        self.models_dir = Path(models_dir)
        self.public_key = public_key
        self.state_path = Path(state_dir) / STATE_FILE
        self.status_interval = status_interval
        self.on_change = on_change
        self.loader = loader
        self.reports: list[dict[str, Any]] = []
        self._queue: queue.Queue[Optional[tuple[str, bytes]]] = queue.Queue()
        self._pending: Optional[dict[str, Any]] = None
        self._watch: Optional[tuple[dict[str, Any], AlarmWatch]] = None
        #: the gateway service's outbox, where the alarms after a switch are counted
        self.outbox = Path(state_dir) / "outbox.sqlite"
        self._chunks: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._state = self._load_state()
        will = (status_topic(gateway), fstatus.offline_payload(gateway, "connection lost "
                                                                        "(last will)"))
        self.link = Link(broker, f"frugalai-agent-{gateway}",
                         will=will if status_interval > 0 else None,
                         on_message=lambda t, p, _r: self._queue.put((t, p)),
                         subscriptions=((MANIFEST, 1),),
                         on_connect=self._publish_status)
        self._worker = threading.Thread(target=self._work, name="fleet-agent", daemon=True)
        self._worker.start()

    # -- state -------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save_state(self, manifest: dict[str, Any]) -> None:
        self._state = {"last_id": manifest["id"], "last_issued": manifest["issued"]}
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.state_path, json.dumps(self._state))

    # -- messages ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                item = ("", b"")
            if item is None:
                return
            topic, payload = item
            try:
                if topic == MANIFEST:
                    self._on_manifest(payload)
                elif topic.startswith(BUNDLE_ROOT + "/"):
                    self._on_chunk(topic, payload)
                self._check_watch()
            except Exception as err:  # a bug must not kill the agent; it is reported
                log.exception("fleet agent: %s", err)

    def _check_watch(self) -> None:
        """After a switch under a manifest's ``watch`` bound: roll back past it, or say the
        new version is healthy once the window passed."""
        if self._watch is None:
            return
        m, watch = self._watch
        reason = watch.poll()
        if reason is not None:
            self._watch = None
            try:
                done = mmodels.rollback(self.models_dir, m["model"], loader=self.loader)
            except ModelError as err:
                self._report(m, "refused", f"{reason}; the rollback failed: {err}")
                return
            self._report(m, "rolled_back", f"{reason}; now {done.version}")
            if self.on_change is not None:
                self.on_change()
        elif watch.done:
            self._watch = None
            self._report(m, "healthy", f"{watch.alarms} alarm(s) within {watch.window_s:g} s "
                                       f"after the switch (bound {watch.max_alarms})")

    def _report(self, manifest: dict[str, Any], outcome: str, reason: str = "",
                final: bool = True) -> None:
        report = {"v": 1, "gateway": self.gateway, "id": manifest.get("id"),
                  "action": manifest.get("action"), "model": manifest.get("model"),
                  "version": manifest.get("version"), "outcome": outcome, "reason": reason,
                  "final": final, "ts": time.time(),
                  "models": installed_models(self.models_dir)}
        self.reports.append(report)
        log.log(logging.INFO if outcome in ("installed", "reverted") else logging.WARNING,
                "rollout %s: %s %s", manifest.get("id"), outcome, reason)
        self.link.client.publish(report_topic(self.gateway), mf.canonical(report), qos=1,
                                 retain=True)
        self._publish_status()

    def _on_manifest(self, payload: bytes) -> None:
        if not payload:
            return  # the retained manifest was cleared
        try:
            manifest = mf.verify(payload, self.public_key)
        except mf.ManifestError as err:
            claimed: dict[str, Any] = {}
            try:
                inner = json.loads(payload).get("manifest")
                if isinstance(inner, dict):
                    claimed = {k: inner.get(k) for k in ("id", "action", "model", "version")}
            except (ValueError, AttributeError):
                pass
            if claimed.get("id") != self._state.get("refused_id"):
                self._state["refused_id"] = claimed.get("id")
                self._report(claimed, "refused", str(err))
            return
        if "*" not in manifest["targets"] and self.gateway not in manifest["targets"]:
            return
        if manifest["issued"] <= self._state.get("last_issued", float("-inf")):
            return  # seen already (a retained message again after a reconnect)
        if manifest["action"] == "rollback":
            self._rollback(manifest)
            return
        current = model_info(self.models_dir, manifest["model"])
        try:
            have = mf.parse_version(current["version"]) if current.get("version") else (0,)
        except mf.ManifestError:
            have = (0,)
        want = mf.parse_version(manifest["version"])
        card = next(f for f in manifest["files"] if f["name"] == "card.json")
        if want < have:
            self._save_state(manifest)
            self._report(manifest, "refused", f"downgrade refused: {manifest['version']} < "
                                              f"installed {current['version']}")
            return
        if want == have:
            self._save_state(manifest)
            if current.get("sha256") == card["sha256"]:
                self._report(manifest, "installed", "already running this version")
            else:
                self._report(manifest, "refused", f"version {manifest['version']} is already "
                                                  "installed with other content")
            return
        if manifest["bundle"]["transport"] == "https":
            self._save_state(manifest)
            try:
                blob = fetch_https(manifest["bundle"]["url"], manifest["bundle"]["bytes"],
                                   self.https_ca)
            except OSError as err:
                self._report(manifest, "refused", f"cannot fetch the bundle: {err}")
                return
            self._install(manifest, blob)
            return
        self._pending, self._chunks = manifest, {}
        self.link.subscribe(bundle_topic(manifest["model"], manifest["version"]), 1)

    def _on_chunk(self, topic: str, payload: bytes) -> None:
        m = self._pending
        if m is None or not topic.startswith(bundle_topic(m["model"], m["version"])[:-1]):
            return
        try:
            index = int(topic.rsplit("/", 1)[1])
        except ValueError:
            return
        if 0 <= index < m["bundle"]["chunks"]:
            self._chunks[index] = payload
        if len(self._chunks) == m["bundle"]["chunks"]:
            self._pending = None
            self.link.client.unsubscribe(bundle_topic(m["model"], m["version"]))
            blob = b"".join(self._chunks[i] for i in range(m["bundle"]["chunks"]))
            self._chunks = {}
            self._save_state(m)
            self._install(m, blob)

    def _install(self, m: dict[str, Any], blob: bytes) -> None:
        if self._watch is not None:  # a newer version replaces the one under watch
            old, watching = self._watch
            self._watch = None
            self._report(old, "healthy", f"superseded by {m['id']} after {watching.alarms} "
                                         f"alarm(s) (bound {watching.max_alarms})")
        try:
            files = mf.unpack(m, blob)
        except mf.ManifestError as err:
            self._report(m, "refused", str(err))
            return
        self.models_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fleet-incoming-", dir=self.models_dir))
        try:
            for name, data in files.items():
                (tmp / name).write_bytes(data)  # plain names only (manifest.check)
            try:
                done = mmodels.install(tmp, self.models_dir, name=m["model"],
                                       loader=self.loader)
            except ModelError as err:
                text = str(err)
                self._report(m, "rolled_back" if "rolled back" in text or "nothing installed"
                             in text else "refused", text)
                return
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        watch = m.get("watch")
        if watch and done.changed:
            self._watch = (m, AlarmWatch(self.outbox, time.time(), watch["window_s"],
                                         watch["max_alarms"]))
            self._report(m, "installed", f"now {done.version}; watching alarms for "
                                         f"{watch['window_s']} s", final=False)
        else:
            self._report(m, "installed", f"now {done.version}")
        if done.changed and self.on_change is not None:
            self.on_change()

    def _rollback(self, m: dict[str, Any]) -> None:
        self._save_state(m)
        current = model_info(self.models_dir, m["model"])
        if current.get("version") != m["version"]:
            self._report(m, "unchanged", f"not running {m['model']} {m['version']} (running "
                                         f"{current.get('version') or 'none'})")
            return
        try:
            done = mmodels.rollback(self.models_dir, m["model"], loader=self.loader)
        except ModelError as err:
            self._report(m, "refused", str(err))
            return
        self._report(m, "reverted", f"now {done.version}")
        if self.on_change is not None:
            self.on_change()

    # -- status ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"v": fstatus.VERSION, "gateway": self.gateway, "online": True,
                "version": __version__, "state": "running", "healthy": True,
                "updated": time.time(), "status_interval_s": self.status_interval,
                "models": installed_models(self.models_dir), "flows": {},
                "outbox": {"pending": 0, "oldest_age_s": None, "lost": 0, "dropped": 0},
                "last_event_ts": None, "agent_only": True}

    def _publish_status(self, link: Optional[Link] = None) -> None:
        # also called from on_connect (with the link: it may not be self.link yet), before
        # the Link marks itself connected
        link = link or self.link
        if self.status_interval > 0 and link.client.is_connected():
            link.client.publish(status_topic(self.gateway), fstatus.encode(self.status()),
                                     qos=1, retain=True)

    def run(self, stop: threading.Event, duration: Optional[float] = None) -> None:
        """Publish the status every interval until ``stop`` is set or ``duration`` passed."""
        deadline = None if duration is None else time.monotonic() + duration
        step = self.status_interval if self.status_interval > 0 else 1.0
        while not stop.wait(step):
            if deadline is not None and time.monotonic() >= deadline:
                break
            self._publish_status()

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(30)
        if self.status_interval > 0 and self.link.connected.is_set():
            try:
                self.link.publish(status_topic(self.gateway),
                                  fstatus.offline_payload(self.gateway, "stopped"), retain=True,
                                  timeout=2.0)
            except OSError:
                pass
        self.link.close()
