"""What every machine-readable result says about how it was made: one small record.

``train``, ``evaluate``, ``score --json``, ``tide`` print JSON whose first keys come from a
:class:`RunMeta`: which bundle (name and version), on which backend and precision, from which
data file (name and sha256), over which period (first and last time used, UTC), read in which
zone, where each defaulted setting came from (``origins``: ``{"zone": "--tz"}``, ``{"zone":
"card flow_defaults.time_zone"}``...), and every warning the run gave (``warnings``, also
printed on stderr by the CLI). A figure without these is a figure nobody can check.

Pure: no I/O, no clock. The CLI computes the file's sha256 and passes it in.

>>> m = RunMeta(command="evaluate", bundle="b", backend="reference", precision="fp32")
>>> m.set_period(0.0, 3600.0); m.warn("no flood episode in the period")
>>> d = m.as_dict(); d["period"]["last_utc"], d["warnings"]
('1970-01-01T01:00:00Z', ['no flood episode in the period'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

#: the keys :meth:`RunMeta.as_dict` always gives, in order (docs/json-outputs.md lists them)
KEYS = ("command", "bundle", "version", "backend", "precision", "data", "period", "zone",
        "origins", "warnings")


def iso_utc(t: float) -> str:
    """UNIX seconds as ``YYYY-MM-DDTHH:MM:SSZ``.

    >>> iso_utc(86400.0)
    '1970-01-02T00:00:00Z'
    """
    return datetime.fromtimestamp(float(t), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunMeta:
    """The provenance of one result; ``None`` where a field does not apply (no bundle yet)."""

    command: str
    bundle: Optional[str] = None
    version: Optional[str] = None
    backend: Optional[str] = None
    precision: Optional[str] = None
    data_file: Optional[str] = None
    data_sha256: Optional[str] = None
    first_utc: Optional[str] = None
    last_utc: Optional[str] = None
    zone: Optional[str] = None
    origins: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Add a warning once (the same text twice says nothing more)."""
        if message not in self.warnings:
            self.warnings.append(message)

    def origin(self, key: str, where: str) -> None:
        """Say where the value of ``key`` came from (an option, the card, a default)."""
        self.origins[key] = where

    def set_period(self, first: float, last: float) -> None:
        """The first and last time used (UNIX s)."""
        self.first_utc, self.last_utc = iso_utc(first), iso_utc(last)

    def as_dict(self) -> dict[str, Any]:
        data = (None if self.data_file is None
                else {"file": self.data_file, "sha256": self.data_sha256})
        period = (None if self.first_utc is None
                  else {"first_utc": self.first_utc, "last_utc": self.last_utc})
        return {"command": self.command, "bundle": self.bundle, "version": self.version,
                "backend": self.backend, "precision": self.precision, "data": data,
                "period": period, "zone": self.zone, "origins": dict(self.origins),
                "warnings": list(self.warnings)}

    def wrap(self, result: dict[str, Any]) -> dict[str, Any]:
        """``result`` under the metadata keys; a result key that would hide one is a bug."""
        clash = sorted(set(KEYS) & set(result))
        if clash:
            raise ValueError(f"result keys {clash} clash with the run metadata")
        return {**self.as_dict(), **result}
