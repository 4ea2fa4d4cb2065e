"""Name / URL-scheme registries for sources, uplinks, backends and codecs.

Built-ins register themselves exactly like third-party plugins do: a plugin package declares an
entry point in the group ``frugalai.<kind>`` (``frugalai.sources``, ``frugalai.uplinks``,
``frugalai.backends``, ``frugalai.codecs``) whose name is the scheme and whose value is a factory.
Built-in factories are named as import strings so that ``import frugalai`` stays light: the module
behind a scheme is imported only when that scheme is used.

An unknown scheme is a :class:`~frugalai.errors.ConfigError` that lists the known ones.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, cast
from urllib.parse import parse_qsl, urlsplit

from frugalai.errors import ConfigError
from frugalai.redact import redact

Factory = Callable[..., Any]


class Registry:
    """A mapping from a name to a factory, with late import of built-ins."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, str | Factory] = {}
        self._plugins_loaded = False
        #: names whose entry is an entry point's ``load`` (called on first use).
        self._entry_points: set[str] = set()

    def register(self, name: str, factory: str | Factory) -> None:
        """Register ``factory`` (a callable or a ``"module:attr"`` string) under ``name``."""
        self._entries[name] = factory

    def names(self) -> list[str]:
        """All known names, sorted, plugins included."""
        self._load_plugins()
        return sorted(self._entries)

    def get(self, name: str, *, key: str | None = None) -> Factory:
        """Return the factory for ``name``; ConfigError naming the known ones otherwise."""
        self._load_plugins()
        try:
            target = self._entries[name]
        except KeyError:
            known = ", ".join(self.names())
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}", key=key) from None
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._entries[name] = obj
            return cast(Factory, obj)
        if name in self._entry_points:  # a plugin: load its entry point once
            self._entry_points.discard(name)
            target = cast(Any, target)()
            self._entries[name] = target
        return target

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        try:
            from importlib.metadata import entry_points
        except ImportError:  # pragma: no cover - Python < 3.8
            return
        try:
            eps: Any = entry_points(group=f"frugalai.{self.kind}s")
        except TypeError:  # Python 3.9: entry_points() takes no arguments
            eps = cast(Any, entry_points()).get(f"frugalai.{self.kind}s", [])
        for ep in eps:
            if ep.name not in self._entries:
                self._entries[ep.name] = ep.load
                self._entry_points.add(ep.name)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"


sources = Registry("source")
uplinks = Registry("uplink")
backends = Registry("backend")
codecs = Registry("codec")
#: LoRa / LoRaWAN payload decoders: bytes -> {quantity: value}.
decoders = Registry("decoder")
policies = Registry("policy")
scorers = Registry("scorer")

# Built-ins. Modules are imported only when their scheme is asked for.
sources.register("serial", "frugalai.sources.serial_source:SerialSource.from_url")
sources.register("replay", "frugalai.sources.replay:ReplaySource.from_url")
sources.register("lora", "frugalai.sources.lora_source:LoraSource.from_url")
sources.register("chirpstack", "frugalai.sources.chirpstack:ChirpStackSource.from_url")
uplinks.register("stdout", "frugalai.uplink.stream:StreamSink.from_url")
uplinks.register("file", "frugalai.uplink.stream:StreamSink.from_url")
uplinks.register("mqtt", "frugalai.uplink.mqtt:MqttSink.from_url")
uplinks.register("mqtts", "frugalai.uplink.mqtt:MqttSink.from_url")
uplinks.register("lorawan", "frugalai.uplink.lorawan:LorawanSink.from_url")
backends.register("reference", "frugalai.runtime.backends:ReferenceBackend")
backends.register("onnx", "frugalai.runtime.backends:OnnxBackend")
backends.register("tflite", "frugalai.runtime.backends:TfliteBackend")
backends.register("native", "frugalai.runtime.native:NativeBackend")
codecs.register("binary", "frugalai.events.codec:encode_binary")
codecs.register("json", "frugalai.events.codec:encode_json")
decoders.register("fb", "frugalai.protocols.payloads:decode_fb")
decoders.register("lpp", "frugalai.protocols.payloads:decode_lpp")
# Scorers: (flow plan) -> Scorer. A flow's ``model`` names one of the first kind directly;
# a bundle's card ``task`` picks a ``bundle.<task>`` one.
scorers.register("profile", "frugalai.scoring:profile_scorer")
scorers.register("threshold", "frugalai.scoring:threshold_scorer")
scorers.register("bundle.anomaly", "frugalai.runtime.scorers:anomaly_scorer")
scorers.register("bundle.classification", "frugalai.runtime.scorers:class_scorer")
# Policies: (resolved [flow.policy] table) -> Policy.
policies.register("hysteresis", "frugalai.scoring:hysteresis")


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
