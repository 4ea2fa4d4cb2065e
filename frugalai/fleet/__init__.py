"""A fleet of gateways on one MQTT broker: event collection, health, signed model rollout.

Pure message logic (:mod:`topics`, :mod:`records`, :mod:`status`, :mod:`manifest`) is kept
apart from the MQTT and SQLite I/O (:mod:`link`, :mod:`collector`, :mod:`health`,
:mod:`agent`, :mod:`rollout`). ``docs/fleet.md`` documents the topic tree and the payloads.
"""
