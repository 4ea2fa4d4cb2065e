"""The operator's side of a rollout: ``frugalai fleet rollout`` and ``frugalai fleet rollback``.

A rollout publishes the bundle's chunks (retained), then a signed manifest for the canary
gateways, waits for their reports, and only when every canary reports ``installed`` publishes a
second signed manifest for every gateway (``targets: ["*"]``, so a gateway that comes online
later still gets it) and waits for the rest. A canary that fails its self-test has already rolled
back by itself; the rollout stops there.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from frugalai.errors import ModelError
from frugalai.fleet import manifest as mf
from frugalai.fleet import status as fstatus
from frugalai.fleet.health import read_statuses
from frugalai.fleet.link import Broker, Link
from frugalai.fleet.topics import MANIFEST, REPORT_FILTER, bundle_topic, gateway_of

OK_OUTCOMES = ("installed", "healthy", "reverted", "unchanged")


def online_gateways(broker: Broker, wait_s: float = 3.0) -> list[str]:
    """Gateways whose retained status says online (a stale one is still asked)."""
    now = time.time()
    found = read_statuses(broker, wait_s)
    return sorted(gw for gw, p in found.items()
                  if fstatus.judge(gw, p, now).verdict != fstatus.OFFLINE)


def canary_of(gateways: list[str], percent: float) -> list[str]:
    """The first ceil(percent% of N) gateways in name order (at least one).

    >>> canary_of([f"gw{i:02d}" for i in range(20)], 10)
    ['gw00', 'gw01']
    """
    if not gateways:
        return []
    n = max(1, math.ceil(len(gateways) * percent / 100.0))
    return sorted(gateways)[:n]


@dataclass
class Stage:
    name: str
    targets: list[str]
    rollout_id: str
    seconds: float = 0.0
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return set(self.outcomes) >= set(self.targets) and all(
            r.get("outcome") in OK_OUTCOMES for r in self.outcomes.values())

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "id": self.rollout_id, "targets": self.targets,
                "seconds": round(self.seconds, 3), "ok": self.ok,
                "outcomes": {g: {"outcome": r.get("outcome"), "reason": r.get("reason")}
                             for g, r in sorted(self.outcomes.items())},
                "missing": sorted(set(self.targets) - set(self.outcomes))}


class Operator:
    """A connection that publishes manifests and gathers the gateways' reports."""

    def __init__(self, broker: Broker, private_key: Any) -> None:
        self.key = private_key
        self._reports: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self.link = Link(broker, f"frugalai-operator-{time.time_ns()}",
                         on_message=self._on_report, subscriptions=((REPORT_FILTER, 1),))
        self.link.wait_connected(10)

    def _on_report(self, topic: str, payload: bytes, _retain: bool) -> None:
        gw = gateway_of(topic)
        try:
            report = json.loads(payload)
        except ValueError:
            return
        if gw is not None and isinstance(report, dict):
            with self._cond:
                self._reports[gw] = report
                self._cond.notify_all()

    def publish_bundle(self, manifest: dict[str, Any], blob: bytes) -> None:
        for i, chunk in enumerate(mf.chunks(manifest, blob)):
            self.link.publish(bundle_topic(manifest["model"], manifest["version"], i), chunk,
                              retain=True, timeout=30)

    def publish_manifest(self, manifest: dict[str, Any]) -> None:
        self.link.publish(MANIFEST, mf.sign(manifest, self.key), retain=True, timeout=30)

    def wait(self, stage: Stage, expected: list[str], timeout: float) -> Stage:
        start = time.monotonic()
        with self._cond:
            while True:
                # a report with final false (installed, watching its alarms) is not the last
                got = {g: r for g, r in self._reports.items() if r.get("id") == stage.rollout_id
                       and g in expected and r.get("final", True)}
                # a failing canary does not end the wait: the operator sees every canary's
                # outcome (each one rolls back by itself)
                if len(got) == len(expected):
                    break
                left = timeout - (time.monotonic() - start)
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        stage.outcomes = got
        stage.seconds = time.monotonic() - start
        return stage

    def close(self) -> None:
        self.link.close()


def bundle_files(path: Path, private_key: Any = None) -> tuple[str, str, dict[str, bytes]]:
    """(model name, version, files) of a bundle directory, its hashes checked first.

    With ``private_key`` (the operator's, which signs the manifest too) the card is signed in
    the files sent (``card.json.sig``, replacing any other): gateways whose config sets
    ``[models] public_key`` to the same key then run what they installed. The directory is not
    changed."""
    from frugalai.runtime.bundle import CARD, SIGNATURE, verify_bundle

    bundle = verify_bundle(path)
    version = str(bundle.card.get("version", ""))
    if not version:
        raise ModelError(f"{path}: the card has no version; a rollout needs one (downgrades "
                         f"are refused by comparing versions): `frugalai train` writes one, "
                         f"or `frugalai models sign {path} --key KEY --version 1.0`")
    mf.parse_version(version)
    files = {f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.is_file()}
    if private_key is not None:
        from frugalai.runtime.stamp import sign_card

        files[SIGNATURE] = sign_card(files[CARD], private_key)
    return bundle.name, version, files


def rollout(broker: Broker, bundle: Path, private_key: Any, *, canary_percent: float = 10.0,
            gateways: Optional[list[str]] = None, timeout: float = 300.0,
            chunk_size: int = mf.DEFAULT_CHUNK, watch: Optional[tuple[int, int]] = None,
            url: Optional[str] = None) -> list[Stage]:
    """Canary first, then every gateway; the stages done (the last one tells why it stopped).

    ``watch`` = (window_s, max_alarms): each gateway watches its alarms for that long after
    the switch and rolls back by itself beyond the bound; a stage then ends only when its
    gateways said ``healthy`` (or failed), so the canary's window passes before the rest.
    ``url``: the gateways fetch the bundle (the bytes ``frugalai fleet pack`` writes) from
    this HTTPS URL the operator hosts, instead of MQTT chunks."""
    name, version, files = bundle_files(bundle, private_key)
    fleet = gateways if gateways is not None else online_gateways(broker)
    if not fleet:
        raise ModelError("no gateway online on the broker (no retained fleet status)")
    canary = canary_of(fleet, canary_percent)
    op = Operator(broker, private_key)
    stages: list[Stage] = []
    try:
        issued = time.time()
        base = f"{name}-{version}-{int(issued)}-{secrets.token_hex(3)}"  # unique per rollout
        m, blob = mf.build(action="install", model=name, version=version, targets=canary,
                           issued=issued, rollout_id=f"{base}-canary", files=files,
                           chunk_size=chunk_size, watch=watch, url=url)
        if url is None:
            op.publish_bundle(m, blob)
        op.publish_manifest(m)
        stages.append(op.wait(Stage("canary", canary, m["id"]), canary, timeout))
        if not stages[-1].ok:
            return stages
        m2, _ = mf.build(action="install", model=name, version=version, targets=["*"],
                         issued=max(time.time(), issued + 1e-3), rollout_id=f"{base}-all",
                         files=files, chunk_size=chunk_size, watch=watch, url=url)
        op.publish_manifest(m2)
        stages.append(op.wait(Stage("all", fleet, m2["id"]), fleet, timeout))
        return stages
    finally:
        op.close()


def rollback(broker: Broker, private_key: Any, model: str, version: str, *,
             gateways: Optional[list[str]] = None, timeout: float = 120.0) -> Stage:
    """Every gateway running ``model`` ``version`` goes back to its previous version."""
    fleet = gateways if gateways is not None else online_gateways(broker)
    op = Operator(broker, private_key)
    try:
        issued = time.time()
        m, _ = mf.build(action="rollback", model=model, version=version, targets=["*"],
                        issued=issued,
                        rollout_id=f"{model}-{version}-{int(issued)}-{secrets.token_hex(3)}-rollback")
        op.publish_manifest(m)
        return op.wait(Stage("rollback", fleet, m["id"]), fleet, timeout)
    finally:
        op.close()
