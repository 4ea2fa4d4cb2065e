"""The configuration: one TOML file loaded into frozen dataclasses, validated.

The schema is declared once, here: each field's type, default and ``help`` metadata drive the
loader, the validation messages, ``frugalai config check`` and ``frugalai config show``. An
unknown key, a wrong type or a bad value is a :class:`~frugalai.errors.ConfigError` naming the
dotted key (``flow[0].policy.on``) and what was expected; the CLI turns it into exit code 2.

Example::

    [gateway]
    id = "mairie-annexe"
    state_dir = "/var/lib/frugalai"

    [[flow]]
    name = "linky"
    source = "serial:///dev/ttyUSB0?protocol=tic&mode=historique"
    quantity = "energy_total_wh"
    aggregate = "rate"          # energy index -> mean power over the window

    [[uplink]]
    url = "stdout://"
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from frugalai import registry
from frugalai.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python < 3.11 only
    import tomli as tomllib


#: built-in values of the keys a model card may also set; the flow plan applies them last
#: (config, then card, then these).
FLOW_DEFAULTS: dict[str, Any] = {"window_s": 900, "decision": "model", "policy.on": 4.0,
                                 "policy.off": 2.0, "policy.debounce": 1,
                                 "profile.tz_offset_h": 1.0}


def _help(text: str, **kwargs: Any) -> Any:
    return field(metadata={"help": text}, **kwargs)


@dataclass(frozen=True)
class GatewayConfig:
    """The gateway itself."""

    id: str = _help("gateway id: MQTT client id and topic segment", default="frugalai")
    state_dir: str = _help("where the outbox and learned state live; the default, relative to "
                           "where `run` starts, is for trying it out: a gateway sets "
                           "/var/lib/frugalai (`service install` needs an absolute path)",
                           default="./state")
    models_dir: str = _help("where installed model bundles are looked up by name (then the "
                            "bundles shipped with frugalai); relative to the config file's "
                            "directory; empty: <state_dir>/models", default="")
    outbox_max: int = _help("undelivered events kept; past it the lowest-priority oldest "
                            "are dropped (counted, reported in summaries). The default holds "
                            "72 h of 16 flows at an event a minute each with room to spare "
                            "(benchmarks/results/soak.md), about 25 MB on disk at the cap",
                            default=100_000)
    outbox_sync: str = _help("outbox fsync policy: group (events committed at once, fsynced "
                             "in groups of <= 0.1 s and always before an uplink gets them), "
                             "append (fsync each stored batch), full, or normal (no fsync)",
                             default="group")

    def validate(self) -> None:
        # the id is a broker user name and a topic level: the rule comes from the topic tree
        from frugalai.fleet.topics import identity_problem

        problem = identity_problem(self.id)
        if problem is not None:
            raise ConfigError(f"{problem}, got {self.id!r}", key="id")
        if self.outbox_max < 1:
            raise ConfigError(f"must be >= 1, got {self.outbox_max}", key="outbox_max")
        if self.outbox_sync not in ("group", "append", "full", "normal"):
            raise ConfigError("must be 'group', 'append', 'full' or 'normal', got "
                              f"{self.outbox_sync!r}", key="outbox_sync")


@dataclass(frozen=True)
class PolicyConfig:
    """Threshold with hysteresis on the model's score.

    ``on``, ``off`` and ``debounce`` left unset take the model card's ``policy`` (a bundle),
    else the built-in defaults (:data:`POLICY_DEFAULTS`); the flow plan resolves them.
    """

    kind: str = _help("event policy, by name in the policy registry (built-in: hysteresis; "
                      "plugins add theirs by entry point)", default="hysteresis")
    on: Optional[float] = _help("alarm when the score reaches this (default: the model "
                                "card's, else 4.0)", default=None)
    off: Optional[float] = _help("clear when the score falls to this (default: the model "
                                 "card's, else 2.0)", default=None)
    debounce: Optional[int] = _help("consecutive windows past a threshold before changing "
                                    "state (default: the model card's, else 1)", default=None)
    max_per_hour: float = _help("rate limit of alarm/clear events per hour, 0 = none "
                                "(the latest state is still sent when the budget allows)",
                                default=0.0)
    burst: int = _help("events allowed at once before the rate limit applies", default=3)

    def validate(self) -> None:
        for key in ("on", "off"):
            _in_range(self, key, -1e12, 1e12)
        _in_range(self, "max_per_hour", 0, 3600)
        if self.off is not None and self.on is not None and self.off > self.on:
            raise ConfigError(f"must be <= on ({self.on}), got {self.off}", key="off")
        if self.debounce is not None and self.debounce < 1:
            raise ConfigError(f"must be >= 1, got {self.debounce}", key="debounce")
        if self.max_per_hour < 0:
            raise ConfigError(f"must be >= 0, got {self.max_per_hour}", key="max_per_hour")
        if self.burst < 1:
            raise ConfigError(f"must be >= 1, got {self.burst}", key="burst")


@dataclass(frozen=True)
class ProfileModelConfig:
    """The online daily-profile scorer (learns the meter's own profile; no training needed)."""

    slot_s: int = _help("slot length of the daily profile, seconds", default=900)
    history: int = _help("values kept per slot", default=8)
    min_history: int = _help("values a slot needs before it scores", default=3)
    floor: float = _help("absolute floor of the spread (value unit)", default=50.0)
    tz_offset_h: Optional[float] = _help("local time offset for day slots, hours (default: "
                                         "the model card's, else 1.0)", default=None)

    def validate(self) -> None:
        if self.slot_s <= 0 or 86400 % self.slot_s:
            raise ConfigError(f"must divide 86400, got {self.slot_s}", key="slot_s")
        _in_range(self, "floor", 0, 1e12)
        _in_range(self, "tz_offset_h", -12, 14)
        if not 1 <= self.min_history <= self.history:
            raise ConfigError(f"must be in 1..history ({self.history}), got "
                              f"{self.min_history}", key="min_history")


@dataclass(frozen=True)
class SpecConfig:
    """A sensor's data sheet: what it promises. The health checks take their thresholds from
    it, and ``frugalai sensors report`` says per figure whether the promise is kept.

    Example: ``spec = { accuracy = 0.01, drift_per_year = 0.02, range = [-1, 12],
    period_s = 360 }``.
    """

    accuracy: Optional[float] = _help("stated accuracy, value unit (the measured noise is "
                                      "judged against it)", default=None)
    drift_per_year: Optional[float] = _help("stated drift per year, value unit", default=None)
    range: tuple[float, ...] = _help("stated range [low, high], value unit: a value outside "
                                     "is a 'range' fault", default=())
    period_s: Optional[float] = _help("sampling period, s: no reading for 2.5 periods is a "
                                      "'gap' (default: learned from the readings)",
                                      default=None)
    battery: str = _help("Reading value holding the node's battery voltage (LoRa nodes: "
                         "'battery_v' for firmware_bridge nodes, 'voltage_<ch>' for LPP)",
                         default="battery_v")
    battery_min_v: float = _help("battery floor, V: below it the 'link' check fails",
                                 default=3.3)

    def validate(self) -> None:
        _in_range(self, "accuracy", 0, 1e12, low_open=True)
        _in_range(self, "drift_per_year", 0, 1e12)
        _in_range(self, "period_s", 0, 86400 * 31, low_open=True)
        _in_range(self, "battery_min_v", 0, 100)
        if self.range and (len(self.range) != 2 or not self.range[0] < self.range[1]):
            raise ConfigError(f"must be [low, high] with low < high, got {list(self.range)}",
                              key="range")


@dataclass(frozen=True)
class FlowConfig:
    """One flow: a source, its features, a model, a policy."""

    name: str = _help("sensor name, used in event ids and topics")
    source: str = _help("source URL: serial://..., replay://...")
    sensor_id: int = _help("sensor id on the wire (0-255)", default=0)
    model_id: int = _help("model id on the wire (0-7)", default=0)
    quantity: str = _help("Reading value fed to the features", default="energy_total_wh")
    aggregate: str = _help("window aggregate: mean, or rate (counter -> per hour)",
                           default="rate")
    window_s: Optional[int] = _help("feature window length, seconds (default: the model "
                                    "card's step, else 900)", default=None)
    model: str = _help("model: 'profile' (online daily profile), 'threshold' (the window "
                       "value itself is the score) or a bundle name/path",
                       default="profile")
    profile: ProfileModelConfig = _help("settings of the 'profile' model",
                                        default_factory=ProfileModelConfig)
    policy: PolicyConfig = _help("event policy", default_factory=PolicyConfig)
    summary_s: int = _help("seconds between summary events (counts, min/mean/max; silence "
                           "upstream then means a dead gateway), 0 = none", default=3600)
    backend: str = _help("runtime of a bundle model: a registered backend (frugalai plugins)",
                         default="reference")
    precision: str = _help("precision of a bundle model (frugalai.registry.PRECISIONS)",
                           default="fp32")
    allow_low_agreement: bool = _help("run int8 on a backend whose int8/fp32 decision "
                                      "agreement the card records under its minimum "
                                      "(refused by default)", default=False)
    threshold_m: Optional[float] = _help("site flood threshold for the coastal model (m, the "
                                         "bundle's datum); default: the bundle's", default=None)
    horizon_h: Optional[int] = _help("coastal nowcast horizon (h); must match the bundle's",
                                     default=None)
    health: bool = _help("run the sensor health checks on every reading (stuck, gaps, "
                         "range, spikes, noise, drift, partner, LoRa link; docs/sensors.md)",
                         default=True)
    spec: SpecConfig = _help("the sensor's data sheet (thresholds of the health checks, "
                             "and what 'sensors report' holds it to)",
                             default_factory=SpecConfig)
    partner: str = _help("name of a co-located flow measuring the same quantity: the "
                         "difference of the two is watched ('partner' check)", default="")
    hold_when_unhealthy: bool = _help("hold the model's decisions (alarms, classes) while "
                                      "the sensor is unhealthy, and say so in a health event "
                                      "and the status, instead of raising false alarms",
                                      default=False)
    decision: Optional[str] = _help("coastal flows: 'model' (the bundle's classifier) or "
                                    "'baseline' (the bundle's tide + current surge against the "
                                    "threshold: the physical rule its card compares the model "
                                    "with); default: the card's decision.default, else 'model'",
                                    default=None)

    def validate(self) -> None:
        registry.backends.check(self.backend, key="backend")
        if self.precision not in registry.PRECISIONS:
            raise ConfigError(f"must be one of {', '.join(registry.PRECISIONS)}, got "
                              f"{self.precision!r}", key="precision")
        _in_range(self, "threshold_m", -100, 100)
        if self.horizon_h is not None and self.horizon_h < 1:
            raise ConfigError(f"must be >= 1, got {self.horizon_h}", key="horizon_h")
        if not self.name or any(c in self.name for c in "/+#: "):
            raise ConfigError(f"must be non-empty without '/', '+', '#', ':' or spaces, got "
                              f"{self.name!r}", key="name")
        if len(self.name) > 64:  # the event schema's sensor names (frugalai.events.schema)
            raise ConfigError(f"must be at most 64 characters, got {len(self.name)}",
                              key="name")
        if "://" not in self.source:
            raise ConfigError(f"expected a URL like serial:///dev/ttyUSB0?protocol=tic, got "
                              f"{self.source!r}", key="source")
        if not 0 <= self.sensor_id <= 255:
            raise ConfigError(f"must be 0-255, got {self.sensor_id}", key="sensor_id")
        if not 0 <= self.model_id <= 7:
            raise ConfigError(f"must be 0-7, got {self.model_id}", key="model_id")
        if self.aggregate not in ("mean", "rate"):
            raise ConfigError(f"must be 'mean' or 'rate', got {self.aggregate!r}",
                              key="aggregate")
        if self.window_s is not None and self.window_s <= 0:
            raise ConfigError(f"must be > 0, got {self.window_s}", key="window_s")
        if self.summary_s < 0:
            raise ConfigError(f"must be >= 0 (0 = no summaries), got {self.summary_s}",
                              key="summary_s")


@dataclass(frozen=True)
class UplinkConfig:
    """Where events go: ``stdout://``, ``file:///path``, ``mqtt://host:port``..."""

    url: str = _help("uplink URL", default="stdout://")


@dataclass(frozen=True)
class ServiceConfig:
    """The daemon (``frugalai run``): health files, stop and watchdog timing."""

    status_interval_s: float = _help("how often status.json and the Prometheus file are "
                                     "rewritten, seconds", default=10.0)
    prometheus_textfile: str = _help("node_exporter textfile-collector file (*.prom) to "
                                     "write; empty: <state_dir>/frugalai.prom", default="")
    stop_timeout_s: float = _help("on SIGTERM, seconds allowed to finish the step and flush "
                                  "the outbox", default=10.0)
    stall_s: float = _help("a flow stuck this long in one step is unhealthy (watchdog pings "
                           "stop, systemd restarts the service)", default=60.0)
    watchdog_s: float = _help("WatchdogSec= written into the unit by 'service install'",
                              default=30.0)
    model_failure_exit_s: float = _help(
        "a flow whose model failed on every window for this long makes 'run' exit with code 4 "
        "(systemd restarts it, a supervisor sees it); 0: never", default=900.0)

    def validate(self) -> None:
        for name in ("status_interval_s", "stop_timeout_s", "stall_s", "watchdog_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"must be > 0, got {getattr(self, name)}", key=name)
            _in_range(self, name, 0, 86400, low_open=True)
        _in_range(self, "model_failure_exit_s", 0, 30 * 86400)
        if self.prometheus_textfile and not self.prometheus_textfile.endswith(".prom"):
            raise ConfigError("node_exporter reads only *.prom files, got "
                              f"{self.prometheus_textfile!r}", key="prometheus_textfile")


@dataclass(frozen=True)
class ModelsConfig:
    """Model bundles installed by ``frugalai models install``."""

    public_key: str = _help("Ed25519 public key bundles must be signed with: 32 bytes as hex "
                            "or base64, or the path of a file holding it; empty: unsigned "
                            "bundles accepted (sha256 still checked)", default="")
    allow_unsigned_native: bool = _help(
        "let the native backend compile bundles that are neither signed (public_key) nor "
        "shipped with frugalai: a bundle compiled is code run by the service, so say yes only "
        "for bundles you built (docs/security.md)", default=False)
    trust_shipped: bool = _help("with a public_key, still run the bundles shipped inside "
                                "frugalai (unsigned: they come with the code that checks "
                                "signatures; sha256 still checked); false: they need a "
                                "signature too", default=True)


@dataclass(frozen=True)
class EnergyConfig:
    """Energy and carbon accounting for ``frugalai report`` and ``frugalai bench``."""

    meter: str = _help("power meter: estimate[:board], rapl, hwmon, ina219:/dev/i2c-N, pmic, "
                       "um25c:/dev/rfcommN", default="estimate")
    board: str = _help("board profile for estimates: auto, pi-zero-2w, pi-3b+, pi-4b, pi-5, "
                       "generic-x86", default="auto")
    bench_results: str = _help("energy_per_inference.json to read figures from; empty: "
                               "<state_dir>/results, then the results shipped in a checkout",
                               default="")
    co2_g_per_kwh: float = _help("carbon intensity of the electricity, gCO2eq/kWh",
                                 default=32.0)
    co2_source: str = _help("where the carbon factor comes from",
                            default="RTE, Bilan électrique 2023 (France)")
    co2_year: int = _help("year of the carbon factor", default=2023)
    co2_basis: str = _help("production or consumption based", default="production")
    co2_scope: str = _help("what the carbon factor counts: 'direct' (combustion at the power "
                           "plants) or 'life cycle' (plants built, fuel chain...)",
                           default="direct")
    radio_tx_w: float = _help("radio module power while transmitting, W", default=0.145)
    lora_dr: int = _help("LoRaWAN EU868 data rate of uplinks (0-6)", default=5)
    fair_use_s_per_day: float = _help("airtime budget per device per day, s (TTN fair use)",
                                      default=30.0)
    events_per_day: float = _help("expected events per day per flow, when no run summary "
                                  "is given", default=4.0)
    electricity_eur_per_kwh: float = _help(
        "electricity price, EUR/kWh incl. taxes (check your contract)", default=0.2016)
    electricity_price_source: str = _help(
        "where the electricity price comes from",
        default="EDF regulated tariff (tarif bleu) option base as published for 1 Feb 2025 "
                "(the tariff changed again on 1 Aug 2025 and this figure was not updated): set "
                "your contract's price")
    electricity_price_date: str = _help(
        "date the electricity price applies from (YYYY-MM-DD)", default="2025-02-01")
    board_embodied_kg_co2e: float = _help(
        "board manufacture, kg CO2e (its product carbon footprint, cradle to gate); "
        "-1: unknown, and the life-cycle CO2e total is then not given", default=-1.0)
    board_embodied_source: str = _help(
        "where the board's manufacture figure comes from (manufacturer's product carbon "
        "footprint, an LCA...)", default="")
    board_lifetime_years: float = _help(
        "years the board is used, to spread its manufacture over", default=5.0)
    cellular_eur_per_mb: float = _help(
        "cellular data price, EUR per MB (check your contract)", default=0.10)
    cellular_price_source: str = _help(
        "where the cellular data price comes from",
        default="default: order of magnitude of pay-as-you-go M2M SIM offers in Europe "
                "(2024), unverified: check your contract")
    storage_uj_per_write: float = _help(
        "energy of one outbox write (a synced SQLite transaction), uJ",
        default=3200.0)
    storage_source: str = _help(
        "where the storage write energy comes from",
        default="estimate: ~4 ms per synced SQLite transaction (benchmarks/results/outbox.json, "
                "x86 ext4) x 0.8 W per busy Pi 4 core; measure on the SD card for a real figure")

    def validate(self) -> None:
        if self.co2_g_per_kwh < 0:
            raise ConfigError(f"must be >= 0, got {self.co2_g_per_kwh}", key="co2_g_per_kwh")
        if self.co2_basis not in ("production", "consumption"):
            raise ConfigError(f"must be 'production' or 'consumption', got "
                              f"{self.co2_basis!r}", key="co2_basis")
        if self.co2_scope not in ("direct", "life cycle"):
            raise ConfigError(f"must be 'direct' or 'life cycle', got {self.co2_scope!r}",
                              key="co2_scope")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.electricity_price_date):
            raise ConfigError(f"expected YYYY-MM-DD, got {self.electricity_price_date!r}",
                              key="electricity_price_date")
        if self.board_embodied_kg_co2e != -1 and not 0 <= self.board_embodied_kg_co2e <= 1e4:
            raise ConfigError(f"must be -1 (unknown) or 0-10000 kg, got "
                              f"{self.board_embodied_kg_co2e}", key="board_embodied_kg_co2e")
        if self.board_embodied_kg_co2e > 0 and not self.board_embodied_source:
            raise ConfigError("a board manufacture figure needs its source: set "
                              "board_embodied_source", key="board_embodied_source")
        _in_range(self, "board_lifetime_years", 0.5, 50)
        if not 0 <= self.lora_dr <= 6:
            raise ConfigError(f"must be 0-6 (EU868 LoRa), got {self.lora_dr}", key="lora_dr")
        for key in ("radio_tx_w", "fair_use_s_per_day", "events_per_day",
                    "electricity_eur_per_kwh", "cellular_eur_per_mb", "storage_uj_per_write"):
            if getattr(self, key) < 0:
                raise ConfigError(f"must be >= 0, got {getattr(self, key)}", key=key)
        _in_range(self, "co2_g_per_kwh", 0, 5000)
        _in_range(self, "radio_tx_w", 0, 10)
        _in_range(self, "fair_use_s_per_day", 0, 86400)
        _in_range(self, "events_per_day", 0, 1e7)
        _in_range(self, "electricity_eur_per_kwh", 0, 100)
        _in_range(self, "cellular_eur_per_mb", 0, 1000)
        _in_range(self, "storage_uj_per_write", 0, 1e9)


@dataclass(frozen=True)
class Config:
    """The whole file."""

    gateway: GatewayConfig = _help("the gateway", default_factory=GatewayConfig)
    flow: tuple[FlowConfig, ...] = _help("flows ([[flow]] tables)", default=())
    uplink: tuple[UplinkConfig, ...] = _help("uplinks ([[uplink]] tables)",
                                             default=(UplinkConfig(),))
    service: ServiceConfig = _help("the daemon", default_factory=ServiceConfig)
    models: ModelsConfig = _help("model bundle installation", default_factory=ModelsConfig)
    energy: EnergyConfig = _help("energy and carbon accounting ([energy] table)",
                                 default_factory=EnergyConfig)

    def validate(self) -> None:
        if not self.flow:
            raise ConfigError("at least one [[flow]] is needed", key="flow")
        names = [f.name for f in self.flow]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"flow names must be unique; repeated: {', '.join(dupes)}",
                              key="flow")
        for i, f in enumerate(self.flow):
            if f.partner and (f.partner not in names or f.partner == f.name):
                others = ", ".join(n for n in names if n != f.name) or "none"
                raise ConfigError(f"must name another flow ({others}), got {f.partner!r}",
                                  key=f"flow[{i}].partner")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _in_range(obj: Any, key: str, low: float, high: float, *, low_open: bool = False) -> None:
    """ConfigError naming ``key`` unless ``low <= value <= high`` (``low < value`` if open)."""
    value = getattr(obj, key)
    if value is None:
        return
    if (value <= low if low_open else value < low) or value > high:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        raise ConfigError(f"must be {bound} and <= {high:g}, got {value!r}", key=key)


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, key)
    if origin is tuple:
        item_type = typing.get_args(tp)[0]
        if not dataclasses.is_dataclass(item_type):  # an array of plain values
            if not isinstance(value, list):
                raise ConfigError(f"expected an array, got {_describe(value)}", key=key)
            return tuple(_convert(item_type, v, f"{key}[{i}]") for i, v in enumerate(value))
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"expected an array of tables, got {_describe(value)}", key=key)
        return tuple(_convert(item_type, v, f"{key}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"expected a table, got {_describe(value)}", key=key)
        return from_dict(tp, value, key)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected a number, got {_describe(value)}", key=key)
        try:
            number = float(value)
        except OverflowError:  # a TOML integer beyond a float's range
            number = math.inf
        if not math.isfinite(number):  # nan compares false with every bound: never alarms
            raise ConfigError(f"expected a finite number, got {value!r}", key=key)
        return number
    if tp in (int, str, bool):
        if type(value) is not tp:
            raise ConfigError(f"expected {_TYPE_NAMES[tp]}, got {_describe(value)}", key=key)
        if tp is str and _CONTROL.search(value):
            # a newline in a path would start a new line in the systemd unit (User=root)
            raise ConfigError(f"control characters (newline, tab...) are not allowed, got "
                              f"{value!r}", key=key)
        return value
    raise TypeError(f"unsupported config type {tp!r} at {key}")  # a schema bug, not user input


def from_dict(cls: Any, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, refusing unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    dot = f"{prefix}." if prefix else ""
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key; known keys here: {', '.join(sorted(fields))}", key=dot + unknown[0]
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], dot + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError("required key is missing", key=dot + name)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ConfigError as err:
            raise ConfigError(err.reason, key=dot + err.key if err.key else prefix or None) from None
    return obj


def load_config(path: Union[str, Path]) -> Config:
    """Read and validate a TOML file. ConfigError (with the key) on any problem."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return loads_config(data, base_dir=Path(path).absolute().parent)


def loads_config(data: dict[str, Any], base_dir: Union[str, Path, None] = None) -> Config:
    """Validate an already-parsed TOML document.

    A relative ``gateway.models_dir`` is made absolute against ``base_dir`` (the config file's
    directory): the service runs from its state dir, an administrator from anywhere, and both
    must find the same models. Without ``base_dir`` a relative one is refused.
    """
    config: Config = from_dict(Config, data)
    models_dir = config.gateway.models_dir
    if models_dir and not Path(models_dir).is_absolute():
        if base_dir is None:
            raise ConfigError(f"must be an absolute path, got {models_dir!r}",
                              key="gateway.models_dir")
        gateway = dataclasses.replace(config.gateway,
                                      models_dir=str(Path(base_dir) / models_dir))
        config = dataclasses.replace(config, gateway=gateway)
    # Which keys the file wrote: `config check --explain` reports a written key as "config"
    # even when its value equals the default (comparing values said "default" for them).
    object.__setattr__(config, "_written", frozenset(_dotted_keys(data)))
    return config


def _dotted_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    """``gateway.id``, ``flow[0].policy.on``... for every key present in a parsed document."""
    keys: list[str] = []
    for name, value in data.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            keys.extend(_dotted_keys(value, key + "."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                keys.extend(_dotted_keys(item, f"{key}[{i}]."))
        else:
            keys.append(key)
    return keys


def installed_models_dir(config: Config) -> Path:
    """Where ``models install`` puts bundles and ``run`` looks names up first:
    ``gateway.models_dir``, else ``<state_dir>/models`` (``frugalai.plan.models_dir`` says the
    same with the origin; this one is for the layers below the plan, like the fleet)."""
    if config.gateway.models_dir:
        return Path(config.gateway.models_dir)
    return Path(config.gateway.state_dir).absolute() / "models"


def written_keys(config: Config) -> Optional[frozenset[str]]:
    """The dotted keys the loaded file wrote (``flow[0].policy.on``), or None for a Config
    built in code (a test, a demo) or changed by ``dataclasses.replace``."""
    written = getattr(config, "_written", None)
    return written if isinstance(written, frozenset) else None


def describe_schema(cls: Any = Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, help) for every key, from the one declaration above."""
    rows: list[tuple[str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        inner = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else tp
        if dataclasses.is_dataclass(inner):
            suffix = "[]" if inner is not tp else ""
            rows.append((key + suffix, "", f.metadata.get("help", "")))
            rows.extend(describe_schema(inner, f"{key}{suffix}."))
            continue
        card_owned = key.split("].", 1)[-1] if key.startswith("flow[") else None
        if f.default is None and card_owned in FLOW_DEFAULTS:
            default = f"card|{FLOW_DEFAULTS[card_owned]!r}"  # the bundle's card, else this
        elif f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "(required)"
        rows.append((key, default, f.metadata.get("help", "")))
    return rows


__all__ = ["Config", "ConfigError", "EnergyConfig", "FlowConfig", "GatewayConfig", "ModelsConfig",
           "PolicyConfig", "ProfileModelConfig", "ServiceConfig", "SpecConfig", "UplinkConfig",
           "describe_schema", "installed_models_dir", "load_config", "loads_config",
           "written_keys"]
