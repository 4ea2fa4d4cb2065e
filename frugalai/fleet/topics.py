"""The fleet's MQTT topic tree (documented in ``docs/fleet.md``). Pure.

::

    frugalai/<gateway>/<sensor>/event              events (the MQTT uplink's default topic)
    frugalai/fleet/<gateway>/status                retained health status, last will = offline
    frugalai/fleet/<gateway>/rollout               retained outcome of the last rollout step
    frugalai/fleet/rollout/manifest                retained signed manifest (operator only)
    frugalai/fleet/rollout/bundle/<model>/<version>/<i>   retained bundle chunks (operator only)

A broker ACL lets each gateway write only under ``frugalai/<its id>/`` and
``frugalai/fleet/<its id>/`` and read only ``frugalai/fleet/rollout/#``.
"""

from __future__ import annotations

import re
from typing import Optional

ROOT = "frugalai"
FLEET = f"{ROOT}/fleet"
EVENTS_FILTER = f"{ROOT}/+/+/event"
STATUS_FILTER = f"{FLEET}/+/status"
REPORT_FILTER = f"{FLEET}/+/rollout"
MANIFEST = f"{FLEET}/rollout/manifest"
BUNDLE_ROOT = f"{FLEET}/rollout/bundle"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def valid_name(name: str) -> bool:
    """A gateway, sensor or model name that is safe in a topic level and a file name.

    >>> valid_name("gw-01"), valid_name("a/b"), valid_name("+"), valid_name("..")
    (True, False, False, False)
    """
    return bool(_NAME.match(name)) and ".." not in name


def status_topic(gateway: str) -> str:
    return f"{FLEET}/{gateway}/status"


def report_topic(gateway: str) -> str:
    return f"{FLEET}/{gateway}/rollout"


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
