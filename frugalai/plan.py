"""One plan per flow: the config and the model card reconciled once, every name checked.

A flow's parameters have two owners: the config file and, for a bundle model, the bundle's card
(its window step, policy thresholds, time zone, horizon, flood threshold). :func:`build_plans`
turns a :class:`~frugalai.config.Config` into :class:`FlowPlan` objects in which that question is
settled: an explicit config value wins, the card fills what the config leaves unset, the
built-in defaults (:data:`~frugalai.config.FLOW_DEFAULTS`) come last, and a config value that
contradicts what the model was trained for is a :class:`~frugalai.errors.ConfigError` naming
``flow.<name>.<key>``. Each bundle is resolved on the model search path and verified (every
sha256, the signature when a key is configured) once, here; the scorer is loaded from that
verified copy.

Every name is checked against :mod:`frugalai.registry`: source scheme and options (the source is
built, which by the sources' contract opens no device), uplink scheme and options (through the
handler's ``validate_url``, which opens and connects nothing), scorer, policy, backend and
precision, and the quantity the flow reads when the protocol says what it produces.

``frugalai config check``, ``run`` (and its reloads), the demos and ``report`` all build these
same plans, so what ``config check`` accepts is what ``run`` runs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from frugalai import registry
from frugalai.config import (
    FLOW_DEFAULTS,
    Config,
    FlowConfig,
    PolicyConfig,
    ProfileModelConfig,
    written_keys,
)
from frugalai.errors import ConfigError, ModelError
from frugalai.scoring import Policy, Scorer
from frugalai.sources.base import Source
from frugalai.uplink.outbox import OUTBOX_FILE

if TYPE_CHECKING:
    from frugalai.runtime.bundle import Bundle
    from frugalai.runtime.model import BundleModel

log = logging.getLogger("frugalai.plan")

#: where a resolved value came from (``config check --explain``).
CONFIG, CARD, DEFAULT = "config", "card", "default"
#: scorer registry names that a card's task selects (a flow's ``model`` cannot name them).
BUNDLE_SCORER = "bundle.{task}"


@dataclass(frozen=True)
class FlowPlan:
    """One flow, ready to build: its resolved settings, their origins, its verified model.

    Attributes:
        index: position in the config file.
        written: the flow as the file wrote it (None where a key was left unset).
        config: the same flow with every card-owned key resolved (no None left but
            ``threshold_m``/``horizon_h`` of non-coastal flows).
        origins: flow key (``window_s``, ``policy.on``...) -> ``config``, ``card`` or
            ``default``.
        scorer: the scorer's name in ``registry.scorers``.
        bundle: the verified bundle (None for built-in scorers).
        model_version: ``builtin:<name>`` or ``<card version>@<digest>``.
        quantities: what the source's protocol can produce, when it says (else None).
    """

    index: int
    written: FlowConfig
    config: FlowConfig
    origins: Mapping[str, str]
    scorer: str
    bundle: Optional[Bundle] = None
    model_version: str = ""
    quantities: Optional[frozenset[str]] = None
    card_values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name

    def key(self, name: str) -> str:
        """The dotted key errors name: ``flow.<flow name>.<name>``."""
        return f"flow.{self.name}.{name}"

    @property
    def window_s(self) -> int:
        return int(self.config.window_s or FLOW_DEFAULTS["window_s"])

    @property
    def tz_offset_h(self) -> float:
        tz = self.config.profile.tz_offset_h
        return float(FLOW_DEFAULTS["profile.tz_offset_h"] if tz is None else tz)

    @property
    def policy_on(self) -> float:
        on = self.config.policy.on
        return float(FLOW_DEFAULTS["policy.on"] if on is None else on)

    @property
    def identity(self) -> tuple[FlowConfig, str]:
        """What a reload compares: same settings and same model content -> keep the flow."""
        return self.config, self.model_version

    def load_model(self) -> BundleModel:
        """The verified bundle on the configured backend and precision."""
        from frugalai.runtime.model import load_verified

        if self.bundle is None:
            raise ConfigError(f"model {self.config.model!r} is not a bundle", key=self.key("model"))
        try:
            return load_verified(self.bundle, self.config.backend, self.config.precision,
                                 allow_low_agreement=self.config.allow_low_agreement)
        except ModelError as err:
            raise ConfigError(str(err), key=self.key("model")) from err

    def build_scorer(self) -> Scorer:
        """A fresh scorer (learned state starts empty), through ``registry.scorers``."""
        factory = registry.scorers.get(self.scorer, key=self.key("model"))
        try:
            scorer: Scorer = factory(self)
        except ModelError as err:
            raise ConfigError(str(err), key=self.key("model")) from err
        return scorer

    def build_policy(self) -> Policy:
        """The flow's event policy, through ``registry.policies``."""
        factory = registry.policies.get(self.config.policy.kind, key=self.key("policy.kind"))
        policy: Policy = factory(self.config.policy)
        return policy

    def open_source(self, **kwargs: Any) -> Source:
        """A fresh source for this flow (it opens its device when read, not here)."""
        from frugalai.sources import open_source

        return open_source(self.config.source, sensor=self.name, key=self.key("source"),
                           **kwargs)


@dataclass(frozen=True)
class GatewayPlan:
    """The whole config, planned: one FlowPlan per flow and the gateway's resolved paths."""

    config: Config
    flows: tuple[FlowPlan, ...]
    models_dir: Path
    models_dir_origin: str
    public_key: Optional[bytes]

    @property
    def state_dir(self) -> Path:
        return Path(self.config.gateway.state_dir)

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / OUTBOX_FILE

    def flow(self, name: str) -> FlowPlan:
        return next(p for p in self.flows if p.name == name)


def models_dir(config: Config) -> tuple[Path, str]:
    """The absolute directory of installed bundles and where it came from.

    ``gateway.models_dir`` (made absolute against the config file's directory when loaded), or
    ``<state_dir>/models``: the service runs from its state dir, so that is where ``models
    install`` puts what it runs.
    """
    if config.gateway.models_dir:
        return Path(config.gateway.models_dir), CONFIG
    return Path(config.gateway.state_dir).absolute() / "models", DEFAULT


def build_plans(config: Config, *, check_uplinks: bool = True,
                source_kwargs: Optional[Mapping[str, Any]] = None,
                models_dir_override: Optional[Path] = None) -> GatewayPlan:
    """Plan every flow of ``config``; ConfigError naming the key on the first problem.

    Args:
        config: a loaded (schema-valid) config.
        check_uplinks: also check each uplink URL (scheme and options; nothing connects).
        source_kwargs: extra arguments the sources are checked with (a test's clock).
        models_dir_override: look installed bundles up here instead (a report on another
            machine's bundles).
    """
    mdir, origin = models_dir(config)
    if models_dir_override is not None:
        mdir, origin = Path(models_dir_override), CONFIG
    public_key = None
    if config.models.public_key:
        from frugalai.runtime.bundle import parse_public_key

        public_key = parse_public_key(config.models.public_key)
    flows = tuple(plan_flow(fc, i, mdir, public_key, source_kwargs,
                            allow_unsigned_native=config.models.allow_unsigned_native,
                            trust_shipped=config.models.trust_shipped)
                  for i, fc in enumerate(config.flow))
    if check_uplinks:
        for i, uc in enumerate(config.uplink):
            check_uplink(uc.url, f"uplink[{i}].url", config)
    return GatewayPlan(config, flows, mdir, origin, public_key)


def check_uplink(url: str, key: str, config: Config) -> None:
    """Scheme and options of an uplink URL, through its handler's ``validate_url``."""
    scheme, _, _ = registry.split_url(url, key=key)
    factory = registry.uplinks.get(scheme, key=key)
    owner = getattr(factory, "__self__", None)  # a classmethod's class (the built-ins)
    validate = getattr(owner, "validate_url", None) or getattr(factory, "validate_url", None)
    if validate is not None:
        validate(url, key=key, gateway=config.gateway.id, state_dir=config.gateway.state_dir)


# --- one flow ---------------------------------------------------------------------------------

class _Resolver:
    """Fills the card-owned keys of one flow: config, then card, then default."""

    def __init__(self, fc: FlowConfig) -> None:
        self.fc = fc
        self.origins: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.card: dict[str, Any] = {}

    def key(self, name: str) -> str:
        return f"flow.{self.fc.name}.{name}"

    def written(self, name: str) -> Any:
        obj: Any = self.fc
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj

    def take(self, name: str, card: Any = None, *, must_match: bool = False,
             why: str = "") -> Any:
        """Resolve ``name``; with ``must_match``, a config value != the card's is refused."""
        mine = self.written(name)
        if card is not None:
            self.card[name] = card
        if mine is not None:
            if must_match and card is not None and mine != card:
                raise ConfigError(f"{mine!r} contradicts the model card ({card!r}): {why}",
                                  key=self.key(name))
            value, origin = mine, CONFIG
        elif card is not None:
            value, origin = card, CARD
        else:
            value, origin = FLOW_DEFAULTS.get(name), DEFAULT
        self.values[name], self.origins[name] = value, origin
        return value

    def only_for_bundles(self, name: str, what: str) -> None:
        if self.written(name) is not None:
            raise ConfigError(f"applies to {what}; model {self.fc.model!r} is not one",
                              key=self.key(name))
        self.values[name], self.origins[name] = None, DEFAULT


def plan_flow(fc: FlowConfig, index: int, models_dir: Path, public_key: Optional[bytes] = None,
              source_kwargs: Optional[Mapping[str, Any]] = None, *,
              allow_unsigned_native: bool = False, trust_shipped: bool = True) -> FlowPlan:
    """Resolve and check one flow (see the module docstring); ``allow_unsigned_native`` is
    ``models.allow_unsigned_native``, ``trust_shipped`` ``models.trust_shipped``."""
    r = _Resolver(fc)
    bundle = None
    task = None
    if fc.model in registry.scorers.names() and not fc.model.startswith("bundle."):
        scorer = fc.model
        version = f"builtin:{fc.model}"
    else:
        bundle = _verified_bundle(fc, models_dir, public_key, r.key("model"),
                                  allow_unsigned_native, trust_shipped)
        task = str(bundle.card.get("task"))
        scorer = BUNDLE_SCORER.format(task=task)
        registry.scorers.get(scorer, key=r.key("model"))
        _check_runtime(fc, bundle, r)
        from frugalai.runtime.bundle import bundle_version

        version = bundle_version(bundle)
    card = bundle.card if bundle is not None else {}
    features = card.get("features", {}) if isinstance(card.get("features"), dict) else {}
    params = features.get("params", {}) if isinstance(features.get("params"), dict) else {}
    card_policy = card.get("policy", {}) if isinstance(card.get("policy"), dict) else {}

    # The window step the features were computed on.
    step = params.get("step_s", params.get("slot_s")) if bundle is not None else None
    r.take("window_s", None if step is None else int(step), must_match=True,
           why=f"the model was trained on {step}-s windows; leave window_s unset or set it "
               f"to {step}")
    on = r.take("policy.on", card_policy.get("on"))
    off = r.take("policy.off", card_policy.get("off"))
    r.take("policy.debounce", card_policy.get("debounce"))
    if off > on:
        raise ConfigError(f"must be <= policy.on ({on}, from the {r.origins['policy.on']}), "
                          f"got {off} (from the {r.origins['policy.off']})",
                          key=r.key("policy.off"))
    r.take("profile.tz_offset_h", params.get("tz_offset_h"))
    if task == "classification":
        trained_h = params.get("horizon_h")
        r.take("horizon_h", trained_h, must_match=True,
               why=f"trained for a {trained_h} h horizon, the flow asks for {fc.horizon_h} h: "
                   f"retrain (frugalai train coastal --horizon)")
        r.take("threshold_m", params.get("threshold_m"))
        decision = r.take("decision", (card.get("decision") or {}).get("default"))
        if decision not in ("model", "baseline"):
            raise ConfigError(f"must be 'model' or 'baseline', got {decision!r}",
                              key=r.key("decision"))
        thresholds = (card.get("decision") or {}).get("thresholds")
        if thresholds is not None:
            r.card["decision.thresholds"] = thresholds
    else:
        what = "coastal classifier bundles"
        for name in ("horizon_h", "threshold_m", "decision"):
            r.only_for_bundles(name, what)
        r.values["decision"], r.origins["decision"] = FLOW_DEFAULTS["decision"], DEFAULT
    registry.policies.get(fc.policy.kind, key=r.key("policy.kind"))
    resolved = dataclasses.replace(
        fc, source=_replay_zone(fc.source, card if bundle is not None else None, r),
        window_s=r.values["window_s"], decision=r.values["decision"],
        horizon_h=r.values["horizon_h"], threshold_m=r.values["threshold_m"],
        policy=dataclasses.replace(fc.policy, on=float(on), off=float(off),
                                   debounce=int(r.values["policy.debounce"])),
        profile=dataclasses.replace(fc.profile,
                                    tz_offset_h=float(r.values["profile.tz_offset_h"])),
    )
    quantities = _check_source(fc, r.key("source"), r.key("quantity"), source_kwargs)
    return FlowPlan(index, fc, resolved, dict(r.origins), scorer, bundle, version, quantities,
                    dict(r.card))


def _verified_bundle(fc: FlowConfig, models_dir: Path, public_key: Optional[bytes],
                     key: str, allow_unsigned_native: bool = False,
                     trust_shipped: bool = True) -> Bundle:
    from frugalai.runtime.bundle import (
        card_is_shipped,
        resolve_bundle,
        signature_key,
        verify_bundle,
    )

    path = None
    try:
        # Through the live link to the immutable copy it points to now: what is verified is
        # what is loaded, even if an install swaps the link in between.
        path = resolve_bundle(fc.model, models_dir).resolve()
        return verify_bundle(path, public_key=signature_key(path, public_key, trust_shipped),
                             allow_unsigned_native=allow_unsigned_native)
    except ModelError as err:
        hint = ""
        if path is not None and public_key is not None and card_is_shipped(path):
            hint = ("; it ships unsigned inside frugalai: set [models] trust_shipped = true, "
                    "or sign a copy (frugalai models sign) and install it")
        raise ConfigError(str(err) + hint, key=key) from err


def _check_runtime(fc: FlowConfig, bundle: Bundle, r: _Resolver) -> None:
    from frugalai.runtime import runtime_available

    registry.backends.get(fc.backend, key=r.key("backend"))
    missing = runtime_available(fc.backend)
    if missing:
        raise ConfigError(f"backend {fc.backend!r} cannot run here: {missing}",
                          key=r.key("backend"))
    from frugalai.runtime.backends import bundle_refusal

    refused = bundle_refusal(fc.backend, bundle)
    if refused:
        raise ConfigError(f"bundle {bundle.name!r}: {refused}", key=r.key("backend"))
    from frugalai.runtime.backends import artifact_keys

    arts = bundle.card.get("artifacts", {})
    artifacts: dict[str, str] = next((arts[k] for k in artifact_keys(fc.backend) if k in arts),
                                     {})
    if fc.precision not in artifacts:
        raise ConfigError(f"bundle {bundle.name!r} has no {fc.precision} model for backend "
                          f"{fc.backend!r} (it has: {', '.join(sorted(artifacts)) or 'none'})",
                          key=r.key("precision"))
    from frugalai.runtime.model import int8_refusal

    why = int8_refusal(bundle.card, fc.backend) if fc.precision == "int8" else None
    if why is not None and not fc.allow_low_agreement:
        raise ConfigError(f"bundle {bundle.name!r}: {why}: use fp32 or another backend, or set "
                          "allow_low_agreement = true", key=r.key("precision"))


def _replay_zone(url: str, card: Optional[Mapping[str, Any]], r: _Resolver) -> str:
    """A ``replay://`` file without ``tz=`` has its naive times read in the zone the bundle
    was trained in (its card's), as ``frugalai evaluate`` and ``score`` do: read as UTC, a
    record kept in local time scored hours off (issue 25). The origin is recorded."""
    if card is None or not url.startswith("replay://"):
        return url
    from urllib.parse import parse_qs, quote, urlsplit

    from frugalai.features.localtime import card_zone, parse_zone, zone_label

    if "tz" in parse_qs(urlsplit(url).query):
        return url
    found = card_zone(dict(card))
    if found is None:
        return url
    try:
        label = zone_label(parse_zone(found[0]))
    except ValueError:
        return url
    if label in ("UTC", "UTC+00:00"):
        return url
    r.card["source.tz"] = f"{label} ({found[1]})"
    return f"{url}{'&' if '?' in url else '?'}tz={quote(label, safe='/:')}"


def _check_source(fc: FlowConfig, key: str, quantity_key: str,
                  source_kwargs: Optional[Mapping[str, Any]]) -> Optional[frozenset[str]]:
    """Build the source (no device is opened by construction), read what it can produce."""
    from frugalai.sources import open_source

    source = open_source(fc.source, sensor=fc.name, key=key, **dict(source_kwargs or {}))
    try:
        quantities = produced_quantities(source)
    finally:
        source.close()
    if quantities is not None and fc.quantity not in quantities:
        import difflib

        close = difflib.get_close_matches(fc.quantity, sorted(quantities), n=3)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        names = sorted(quantities)
        shown = ", ".join(names[:15]) + (f" and {len(names) - 15} more" if len(names) > 15
                                         else "")
        raise ConfigError(f"{fc.quantity!r} is not a quantity this source's protocol produces; "
                          f"{hint}it gives: {shown}", key=quantity_key)
    return quantities


def produced_quantities(source: object) -> Optional[frozenset[str]]:
    """The quantity names a source can produce, when its protocol says; None when unknowable
    (a replay file's columns, an LPP payload, a plugin that does not declare them).

    A source declares them with a ``quantities`` attribute; the built-in serial protocols are
    read from their tables.
    """
    declared = getattr(source, "quantities", None)
    if isinstance(declared, (set, frozenset, tuple, list)):
        return frozenset(str(q) for q in declared)
    framer = type(getattr(source, "framer", None)).__name__
    if framer == "TicFramer":
        from frugalai.protocols.tic_values import NUMERIC_LABELS

        return frozenset(name for name, _, _ in NUMERIC_LABELS.values()) | {"power_w"}
    if framer == "FbFramer":
        from frugalai.protocols.frames import QUANTITIES

        return frozenset(q.name for q in QUANTITIES)
    decoder = getattr(source, "decoder", None)
    if decoder is not None and "fb" in registry.decoders.names() and \
            decoder is registry.decoders.get("fb"):  # radio packets: + the radio's own values
        from frugalai.protocols.frames import QUANTITIES

        return frozenset(q.name for q in QUANTITIES) | {"rssi_dbm", "snr_db"}
    blocks = getattr(source, "blocks", None)
    if type(source).__name__ == "ModbusSource" and isinstance(blocks, list):
        return frozenset(reg.name for block in blocks for reg in block.registers)
    return None


# --- explain: each value with its origin ------------------------------------------------------

def explain(plan: GatewayPlan) -> list[tuple[str, str, str]]:
    """(key, value, origin) for every setting, as ``git config --show-origin`` lists them.

    A key the file wrote is ``config`` whatever its value (the keys the loader saw, not a
    comparison with the default); a card-owned flow key left unset is ``card`` or ``default``
    as the plan resolved it.
    """
    rows: list[tuple[str, str, str]] = []
    cfg = plan.config
    written = written_keys(cfg)

    def origin_of(dotted: str, f: dataclasses.Field[Any], value: Any) -> str:
        if written is not None:
            return CONFIG if dotted in written else DEFAULT
        return _origin(f, value)

    for section in ("gateway", "service", "models", "energy"):
        obj = getattr(cfg, section)
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if section == "gateway" and f.name == "models_dir":
                rows.append(("gateway.models_dir", str(plan.models_dir), plan.models_dir_origin))
                continue
            shown = "***" if section == "models" and f.name == "public_key" and value else value
            rows.append((f"{section}.{f.name}", repr(shown),
                         origin_of(f"{section}.{f.name}", f, value)))
    for fp in plan.flows:
        prefix = f"flow.{fp.name}."
        at = f"flow[{fp.index}]."
        for f in dataclasses.fields(FlowConfig):
            sub = getattr(fp.config, f.name)
            if isinstance(sub, (PolicyConfig, ProfileModelConfig)):
                for g in dataclasses.fields(sub):
                    name = f"{f.name}.{g.name}"
                    value = getattr(sub, g.name)
                    origin = fp.origins.get(name) or origin_of(
                        at + name, g, getattr(getattr(fp.written, f.name), g.name))
                    rows.append((prefix + name, repr(value), origin))
                continue
            origin = fp.origins.get(f.name) or origin_of(at + f.name, f,
                                                          getattr(fp.written, f.name))
            rows.append((prefix + f.name, repr(sub), origin))
        if fp.bundle is not None:
            rows.append((prefix + "model.bundle", f"{fp.bundle.path} {fp.model_version}",
                         "card"))
            if "decision.thresholds" in fp.card_values:
                rows.append((prefix + "decision.thresholds",
                             repr(fp.card_values["decision.thresholds"]), CARD))
            if "source.tz" in fp.card_values:
                rows.append((prefix + "source.tz", repr(fp.card_values["source.tz"]), CARD))
    return rows


def _origin(f: dataclasses.Field[Any], value: Any) -> str:
    if f.default is not dataclasses.MISSING:
        return DEFAULT if value == f.default else CONFIG
    if f.default_factory is not dataclasses.MISSING:
        return DEFAULT if value == f.default_factory() else CONFIG
    return CONFIG
