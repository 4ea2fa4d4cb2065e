"""The daemon: supervision of flows, sd_notify, signals, health files, the systemd unit.

Only ``frugalai run`` and the ``service``/``status``/``models`` commands import this package.
"""
