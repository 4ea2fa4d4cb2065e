"""Name / URL-scheme registries: the one place where every extension point is declared.

One :class:`Registry` per kind: ``sources`` (URL scheme -> source), ``protocols`` (serial
protocol -> framer), ``uplinks`` (URL scheme -> sink), ``backends``, ``codecs``, ``decoders``
(LoRa payloads), ``meters``, plus ``policies`` and ``scorers``. Config validation, the CLI's
choices, ``frugalai plugins`` and the conformance tests all read these; no other module keeps
its own list of names.

**Built-ins and plugins take the same path.** A third-party package declares an entry point in
the group ``frugalai.<kinds>`` (``frugalai.backends``, ``frugalai.uplinks``,
``frugalai.policies``, ...) whose name is the name or scheme and whose value is
``"module:attr"`` (worked examples: ``docs/extending.md``)::

    [project.entry-points."frugalai.backends"]
    mybackend = "mypkg.backend:MyBackend"

The built-ins below are the same ``(name, "module:attr")`` records, turned into the same
:class:`importlib.metadata.EntryPoint` objects (on first use) and loaded by the same
``EntryPoint.load()``. They are declared here rather than in ``pyproject.toml`` so that the
core works without its own distribution metadata (a source checkout, a stale editable
install, a vendored copy). The module behind a name is imported only when that name is used:
``import frugalai`` stays light.

A plugin may not replace a built-in: the built-in wins and ``frugalai plugins`` shows the
plugin as shadowed. An unknown name is a :class:`~frugalai.errors.ConfigError` that lists the
known ones.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union, cast
from urllib.parse import parse_qsl, urlsplit

from frugalai.errors import ConfigError
from frugalai.redact import redact

Factory = Callable[..., Any]

#: Model precisions a backend may be asked for (the card's ``artifacts`` name one file each).
PRECISIONS = ("fp32", "int8")


@dataclass
class Entry:
    """One registered name and where it comes from."""

    kind: str
    name: str
    #: ``"module:attr"`` of the factory (or the callable's qualified name)
    target: str
    #: ``built-in``, ``plugin`` or ``code`` (registered at run time by ``register``)
    origin: str
    #: for a plugin, the distribution that declares it (``name version``)
    distribution: str = ""
    #: a plugin entry point with the same name as an existing entry (not used)
    shadowed: bool = False
    _load: Optional[Callable[[], Any]] = None
    _factory: Optional[Factory] = None

    def load(self, key: Optional[str] = None) -> Factory:
        """The factory, imported on first use; a ConfigError naming the entry (and the
        distribution of a plugin) if its module cannot be imported."""
        if self._factory is None:
            assert self._load is not None
            try:
                self._factory = cast(Factory, self._load())
            except Exception as err:  # any import-time failure of third-party code
                where = f"plugin {self.distribution}" if self.distribution else self.origin
                raise ConfigError(f"{self.kind} {self.name!r} ({where}, {self.target}) cannot "
                                  f"be loaded: {type(err).__name__}: {err}", key=key) from err
        return self._factory

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "target": self.target, "origin": self.origin}
        if self.distribution:
            out["distribution"] = self.distribution
        if self.shadowed:
            out["shadowed"] = True
        return out


def _describe(factory: Factory) -> str:
    module = getattr(factory, "__module__", "?")
    return f"{module}:{getattr(factory, '__qualname__', repr(factory))}"


@dataclass(frozen=True)
class _EntryPointLoader:
    """Loads a ``"module:attr"`` record through :class:`importlib.metadata.EntryPoint`, the very
    object a plugin's entry point is, built only on first use (``importlib.metadata`` costs
    ~20 ms to import: ``import frugalai`` does not pay it)."""

    name: str
    value: str
    group: str

    def __call__(self) -> Any:
        from importlib.metadata import EntryPoint

        return EntryPoint(name=self.name, value=self.value, group=self.group).load()


@functools.lru_cache(maxsize=1)
def _installed_entry_points() -> Any:
    """Every installed entry point, read once per process: each ``entry_points(group=...)``
    call scans every installed distribution's metadata again (~10 ms each on a Pi-class
    CPU, six registries at start-up)."""
    from importlib.metadata import entry_points

    return entry_points()


def _entry_points(group: str) -> list[Any]:
    eps = _installed_entry_points()
    select = getattr(eps, "select", None)
    if select is not None:
        return list(select(group=group))
    return list(cast(Any, eps).get(group, []))  # Python 3.9: a dict of groups


class Registry:
    """A mapping from a name to a factory, with late import of every target.

    Args:
        kind: singular name of the kind; plugins use the entry-point group ``frugalai.<kinds>``
            (``policy`` -> ``frugalai.policies``).
        label: how an error message names the kind (default: ``kind``).
    """

    def __init__(self, kind: str, label: Optional[str] = None) -> None:
        self.kind = kind
        self.label = label or kind
        self.plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
        self.group = f"frugalai.{self.plural}"
        self._entries: dict[str, Entry] = {}
        self._shadowed: list[Entry] = []
        self._plugins_loaded = False

    def builtin(self, name: str, target: str) -> None:
        """Declare a built-in: the same ``"module:attr"`` record a plugin's entry point holds."""
        self._entries[name] = Entry(self.kind, name, target, "built-in",
                                    _load=_EntryPointLoader(name, target, self.group))

    def register(self, name: str, factory: Union[str, Factory]) -> None:
        """Register ``factory`` (a callable or a ``"module:attr"`` string) under ``name``, at run
        time (tests, scripts); replaces an existing entry of that name."""
        if isinstance(factory, str):
            self._entries[name] = Entry(self.kind, name, factory, "code",
                                        _load=_EntryPointLoader(name, factory, self.group))
        else:
            self._entries[name] = Entry(self.kind, name, _describe(factory), "code",
                                        _factory=factory)

    def _add(self, ep: Any, origin: str) -> None:
        dist = getattr(ep, "dist", None)
        entry = Entry(self.kind, ep.name, ep.value, origin,
                      distribution=f"{dist.name} {dist.version}" if dist is not None else "",
                      _load=ep.load)
        if ep.name in self._entries:
            entry.shadowed = True
            self._shadowed.append(entry)
        else:
            self._entries[ep.name] = entry

    def names(self) -> list[str]:
        """All known names, sorted, plugins included."""
        self._load_plugins()
        return sorted(self._entries)

    def entries(self, *, shadowed: bool = False) -> list[Entry]:
        """Every entry, sorted by name (with the shadowed plugins when asked)."""
        self._load_plugins()
        out = [self._entries[n] for n in sorted(self._entries)]
        return out + self._shadowed if shadowed else out

    def entry(self, name: str, *, key: Optional[str] = None) -> Entry:
        """The entry of ``name``; ConfigError naming the known ones otherwise."""
        self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names())
            raise ConfigError(f"unknown {self.label} {name!r}; known: {known}", key=key) from None

    def check(self, name: str, *, key: Optional[str] = None) -> str:
        """``name`` if registered (nothing is imported); ConfigError listing the known ones."""
        self.entry(name, key=key)
        return name

    def get(self, name: str, *, key: Optional[str] = None) -> Factory:
        """Return the factory for ``name``; ConfigError naming the known ones otherwise."""
        return self.entry(name, key=key).load(key)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in _entry_points(self.group):
            self._add(ep, origin="plugin")

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"


sources = Registry("source")
#: serial stream protocols (``serial://...?protocol=NAME``): framers, or pollers owning the port
protocols = Registry("protocol", label="serial protocol")
uplinks = Registry("uplink")
backends = Registry("backend")
codecs = Registry("codec")
#: power meters (``frugalai bench --meter NAME[:rest][?options]``)
meters = Registry("meter")
#: LoRa / LoRaWAN payload decoders: bytes -> {quantity: value}.
decoders = Registry("decoder")
#: event policies (``[flow.policy] kind``): (resolved policy table) -> Policy
policies = Registry("policy")
#: scorers (a flow's ``model``, or ``bundle.<task>``): (flow plan) -> Scorer
scorers = Registry("scorer")

#: every registry, by the kind name ``frugalai plugins`` shows
ALL: dict[str, Registry] = {r.kind: r for r in (sources, protocols, uplinks, backends, codecs,
                                                  decoders, meters, policies, scorers)}

# Built-ins: the same records a plugin declares as entry points. Imported only when used.
sources.builtin("serial", "frugalai.sources.serial_source:SerialSource.from_url")
sources.builtin("replay", "frugalai.sources.replay:ReplaySource.from_url")
sources.builtin("lora", "frugalai.sources.lora_source:LoraSource.from_url")
sources.builtin("chirpstack", "frugalai.sources.chirpstack:ChirpStackSource.from_url")
protocols.builtin("tic", "frugalai.sources.framers:TicFramer")
protocols.builtin("fb", "frugalai.sources.framers:FbFramer")
protocols.builtin("modbus", "frugalai.sources.modbus_source:ModbusSource")
uplinks.builtin("stdout", "frugalai.uplink.stream:StreamSink.from_url")
uplinks.builtin("file", "frugalai.uplink.stream:StreamSink.from_url")
uplinks.builtin("mqtt", "frugalai.uplink.mqtt:MqttSink.from_url")
uplinks.builtin("mqtts", "frugalai.uplink.mqtt:MqttSink.from_url")
uplinks.builtin("lorawan", "frugalai.uplink.lorawan:LorawanSink.from_url")
backends.builtin("reference", "frugalai.runtime.backends:ReferenceBackend")
backends.builtin("onnx", "frugalai.runtime.backends:OnnxBackend")
backends.builtin("tflite", "frugalai.runtime.backends:TfliteBackend")
backends.builtin("native", "frugalai.runtime.native:NativeBackend")
codecs.builtin("json", "frugalai.events.codec:JSON")
codecs.builtin("binary", "frugalai.events.codec:BINARY")
meters.builtin("estimate", "frugalai.energy.estimate:EstimateMeter.from_spec")
meters.builtin("rapl", "frugalai.energy.rapl:RaplMeter.from_spec")
meters.builtin("hwmon", "frugalai.energy.hwmon:HwmonMeter.from_spec")
meters.builtin("ina219", "frugalai.energy.ina219:Ina219Meter.from_spec")
meters.builtin("pmic", "frugalai.energy.pmic:PmicMeter.from_spec")
meters.builtin("um24c", "frugalai.energy.usbmeter:um24c")
meters.builtin("um25c", "frugalai.energy.usbmeter:um25c")
meters.builtin("um34c", "frugalai.energy.usbmeter:um34c")
decoders.builtin("fb", "frugalai.protocols.payloads:decode_fb")
decoders.builtin("lpp", "frugalai.protocols.payloads:decode_lpp")
# Scorers: (flow plan) -> Scorer. A flow's ``model`` names one of the first kind directly;
# a bundle's card ``task`` picks a ``bundle.<task>`` one.
scorers.builtin("profile", "frugalai.builtin_scorers:profile_scorer")
scorers.builtin("threshold", "frugalai.builtin_scorers:threshold_scorer")
scorers.builtin("bundle.anomaly", "frugalai.runtime.scorers:anomaly_scorer")
scorers.builtin("bundle.classification", "frugalai.runtime.scorers:class_scorer")
# Policies: (resolved [flow.policy] table) -> Policy.
policies.builtin("hysteresis", "frugalai.scoring:hysteresis")


def listing(load: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Every registered name per kind with its origin (what ``frugalai plugins`` shows).

    Without ``load`` nothing is imported: a plugin whose module is broken is still listed, with
    where it comes from. With ``load``, each entry is imported and a failure is reported in
    its ``error`` field (``frugalai plugins --check``).
    """
    found: dict[str, list[dict[str, Any]]] = {}
    for kind, reg in ALL.items():
        rows = []
        for e in reg.entries(shadowed=True):
            row = e.as_dict()
            if load and not e.shadowed:
                try:
                    e.load()
                except ConfigError as err:
                    row["error"] = err.reason
            rows.append(row)
        found[kind] = rows
    return found


def format_listing(found: dict[str, list[dict[str, Any]]]) -> str:
    """The listing as aligned text, one block per kind."""
    lines: list[str] = []
    for kind, rows in found.items():
        reg = ALL[kind]
        lines.append(f"{reg.plural} (entry points: {reg.group}):")
        if not rows:
            lines.append("  (none)")
        width = max((len(r["name"]) for r in rows), default=0)
        for r in rows:
            where = r["origin"] + (f" [{r['distribution']}]" if r.get("distribution") else "")
            note = "  (shadowed by the entry above: not used)" if r.get("shadowed") else ""
            if r.get("error"):
                note += f"\n    ERROR: {r['error']}"
            lines.append(f"  {r['name']:<{width}}  {where:<10}  {r['target']}{note}")
    return "\n".join(lines)


def split_url(url: str, *, key: str | None = None) -> tuple[str, str, dict[str, str]]:
    """Split an endpoint URL into (scheme, rest-without-query, options).

    >>> split_url("serial:///dev/ttyUSB0?baud=1200&protocol=tic")
    ('serial', '/dev/ttyUSB0', {'baud': '1200', 'protocol': 'tic'})
    >>> split_url("replay://data.csv?speed=60")
    ('replay', 'data.csv', {'speed': '60'})
    """
    if "://" not in url:
        raise ConfigError(f"expected a URL like scheme://...?option=value, got {redact(url)!r}",
                          key=key)
    parts = urlsplit(url)
    rest = parts.netloc + parts.path
    options: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in options:
            raise ConfigError(f"option {name!r} given twice in {redact(url)!r}", key=key)
        options[name] = value
    return parts.scheme, rest, options


def check_options(
    url: str, options: dict[str, str], allowed: dict[str, str], *, key: str | None = None
) -> None:
    """Refuse options a handler does not know, showing the expected form.

    Args:
        url: the URL, for the message.
        options: the options found in the URL.
        allowed: option name -> one-line description, as in the handler's docstring.
        key: the config key the URL came from.
    """
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        listing = "; ".join(f"{k}: {v}" for k, v in allowed.items())
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} in {redact(url)!r}; known options: "
            f"{listing}",
            key=key,
        )
