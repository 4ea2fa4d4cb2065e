"""The ``frugalai`` command: a thin click group, one module per command group. Parse, build,
call; no logic here (see :mod:`frugalai.cli.core` for the exit codes)."""

from __future__ import annotations

# Each module registers its commands on ``cli`` when imported.
from frugalai.cli import (
    config,  # noqa: F401
    demo,  # noqa: F401
    energy,  # noqa: F401
    fleet,  # noqa: F401
    gateway,  # noqa: F401
    models,  # noqa: F401
    offline,  # noqa: F401
    plugins,  # noqa: F401
    report,  # noqa: F401
    sensors,  # noqa: F401
    tide,  # noqa: F401
    train,  # noqa: F401
)
from frugalai.cli.core import cli, main

__all__ = ["cli", "main"]
