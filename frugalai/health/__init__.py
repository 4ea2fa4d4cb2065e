"""Sensor health: is the sensor still telling the truth?

:mod:`~frugalai.health.checks` (pure, O(1) per reading: stuck, gaps, range, spikes, noise,
drift against a reference, partner, LoRa link), :mod:`~frugalai.health.monitor` (a flow's
checks turned into health events), :mod:`~frugalai.health.stats` (the day figures and the field
report against the data sheet), :mod:`~frugalai.health.offline` (the same checks on a CSV).
"""
