"""The fleet's MQTT topic tree (documented in ``docs/fleet.md``). Pure.

::

    frugalai/<gateway>/<sensor>/event              events (the MQTT uplink's default topic)
    frugalai/<gateway>/status                      the MQTT uplink's birth / last will
    frugalai/fleet/<gateway>/status                retained health status, last will = offline
    frugalai/fleet/<gateway>/rollout               retained outcome of the last rollout step
    frugalai/fleet/rollout/manifest                retained signed manifest (operator only)
    frugalai/fleet/rollout/bundle/<model>/<version>/<i>   retained bundle chunks (operator only)

The tree is declared once, as data (:data:`LAYOUT`): the broker ACL (:mod:`frugalai.fleet.acl`,
``frugalai fleet acl``) and the reserved gateway identities (:data:`RESERVED`,
:func:`identity_problem`) are derived from it, so a topic added here is protected in both
places at once. The ACL lets each gateway write only its own leaves of the tree and read only
the rollout topics.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Optional

ROOT = "frugalai"
FLEET = f"{ROOT}/fleet"


@dataclass(frozen=True)
class TopicSpec:
    """One kind of topic of the tree.

    Attributes:
        name: short name (docs, ACL comments).
        template: the topic with ``{field}`` placeholders; ``{gateway}`` is the writer's own id
            when ``writer`` is ``gateway``.
        writer: who publishes it: ``gateway`` (each under its own id) or ``operator``.
        readers: who subscribes to it besides the operator (``collector``, ``gateway``).
        doc: what travels on it.
    """

    name: str
    template: str
    writer: str
    readers: tuple[str, ...]
    doc: str

    def levels(self) -> list[str]:
        return self.template.split("/")

    def words(self) -> set[str]:
        """The literal levels (not the ``{placeholders}``)."""
        return {w for w in self.levels() if not w.startswith("{")}


#: Every topic of the fleet; the single source of the ACL and of the reserved identities.
LAYOUT: tuple[TopicSpec, ...] = (
    TopicSpec("event", f"{ROOT}/{{gateway}}/{{sensor}}/event", "gateway", ("collector",),
              "events (QoS 1), JSON or binary"),
    TopicSpec("uplink-status", f"{ROOT}/{{gateway}}/status", "gateway", (),
              "the MQTT uplink's retained online/offline (birth and last will)"),
    TopicSpec("status", f"{FLEET}/{{gateway}}/status", "gateway", ("collector",),
              "retained health status; last will = offline"),
    TopicSpec("report", f"{FLEET}/{{gateway}}/rollout", "gateway", ("collector",),
              "retained outcome of the gateway's last rollout step"),
    TopicSpec("manifest", f"{FLEET}/rollout/manifest", "operator", ("gateway",),
              "retained signed rollout manifest"),
    TopicSpec("bundle", f"{FLEET}/rollout/bundle/{{model}}/{{version}}/{{index}}", "operator",
              ("gateway",), "retained model bundle chunks"),
)

_BY_NAME = {t.name: t for t in LAYOUT}

EVENTS_FILTER = f"{ROOT}/+/+/event"
STATUS_FILTER = f"{FLEET}/+/status"
REPORT_FILTER = f"{FLEET}/+/rollout"
MANIFEST = _BY_NAME["manifest"].template
BUNDLE_ROOT = _BY_NAME["bundle"].template.split("/{")[0]

#: Words a gateway id may not be: every literal level of the layout below the root (compared
#: without case). The root word itself stays allowed (it is the default id): it is only ever
#: level 0, and a gateway id is never at level 0.
RESERVED: frozenset[str] = frozenset(w for t in LAYOUT for w in t.words()) - {ROOT}

#: The longest gateway id (a topic level, a client id suffix, a file name).
MAX_ID = 64

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def valid_name(name: str) -> bool:
    """A gateway, sensor or model name that is safe in a topic level and a file name.

    >>> valid_name("gw-01"), valid_name("a/b"), valid_name("+"), valid_name("..")
    (True, False, False, False)
    """
    return bool(_NAME.match(name)) and ".." not in name


def identity_problem(name: object) -> Optional[str]:
    """Why ``name`` cannot be a gateway id, or None if it can.

    A gateway id is its broker user name and a level of its topics: it must not be a word of
    the fleet's own tree (a gateway called ``rollout`` would own the rollout's subtree under
    the ``%u`` ACL patterns), nor something that changes what a topic or an ACL pattern means.

    >>> identity_problem("gw-01") is None
    True
    >>> print(identity_problem("rollout"))  # doctest: +ELLIPSIS
    'rollout' is a word of the fleet's topic tree (reserved: bundle, event, fleet, manifest, ...)
    >>> print(identity_problem("gw/1"))
    must be a name without '/' (the MQTT topic separator)
    """
    if not isinstance(name, str):
        return f"must be a string, got {type(name).__name__}"
    if not name:
        return "must not be empty"
    if len(name) > MAX_ID:
        return f"must be at most {MAX_ID} characters, got {len(name)}"
    if any(unicodedata.category(c)[0] == "C" or c in "\u2028\u2029" for c in name):
        return "must not contain control characters"
    if name.startswith("$"):
        return "must not start with '$' (topics of the broker itself, like $SYS)"
    if "/" in name:
        return "must be a name without '/' (the MQTT topic separator)"
    if "+" in name or "#" in name:
        return "must not contain the MQTT wildcards '+' or '#'"
    if any(c.isspace() for c in name):
        return "must not contain spaces"
    if name.lower() in RESERVED:
        return (f"{name!r} is a word of the fleet's topic tree (reserved: "
                f"{', '.join(sorted(RESERVED))})")
    return None


def share_problem(group: str) -> Optional[str]:
    """Why ``group`` cannot name an MQTT 5 shared subscription (``$share/<group>/<filter>``),
    or None. MQTT 5 (4.8.2) wants at least one character and no '/', '+' or '#' (a '/' would
    silently make a different filter); a control character or a space would be a group the
    logs and the unit do not show as the broker sees it."""
    if not group:
        return "an MQTT 5 share group needs at least one character"
    bad = sorted({c for c in group if c in "/+#" or c.isspace() or not c.isprintable()})
    if bad:
        return (f"an MQTT 5 share group cannot hold {', '.join(repr(c) for c in bad)}, "
                f"got {group!r}")
    return None


def topic_of(name: str, **fields: object) -> str:
    """A topic of :data:`LAYOUT` by name, its placeholders filled.

    >>> topic_of("status", gateway="gw1")
    'frugalai/fleet/gw1/status'
    """
    return _BY_NAME[name].template.format(**fields)


def status_topic(gateway: str) -> str:
    return topic_of("status", gateway=gateway)


def report_topic(gateway: str) -> str:
    return topic_of("report", gateway=gateway)


def bundle_topic(model: str, version: str, index: Optional[int] = None) -> str:
    base = f"{BUNDLE_ROOT}/{model}/{version}"
    return f"{base}/+" if index is None else f"{base}/{index}"


def event_parts(topic: str) -> Optional[tuple[str, str]]:
    """(gateway, sensor) of an event topic, or None.

    >>> event_parts("frugalai/gw1/linky/event"), event_parts("frugalai/fleet/gw1/status")
    (('gw1', 'linky'), None)
    """
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != ROOT or parts[3] != "event" or parts[1] == "fleet":
        return None
    return parts[1], parts[2]


def gateway_of(topic: str) -> Optional[str]:
    """The gateway of a ``frugalai/fleet/<gateway>/<leaf>`` topic, or None."""
    parts = topic.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != FLEET or parts[2] == "rollout":
        return None
    return parts[2]
