"""One exception tree for the whole package.

Third-party exceptions are translated where they enter (``raise X from err``) so a caller only
needs to know these. Each message says what was expected and what was received.
"""

from __future__ import annotations

from frugalai.redact import redact


class FrugalError(Exception):
    """Base of every error frugalai raises on purpose.

    Its text never shows a secret: an URL password or a ``password=`` option value is
    replaced by ``***`` (:func:`frugalai.redact.redact`), whatever message a raiser built.
    """

    def __str__(self) -> str:
        return redact(super().__str__())


class ConfigError(FrugalError):
    """A configuration value is missing, unknown or invalid.

    Attributes:
        key: dotted path of the offending key (``flow[0].source``), when known.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        self.key = key
        self.reason = redact(message)  # the args too: repr() and pickles stay clean
        super().__init__(f"{key}: {self.reason}" if key else self.reason)


class DecodeError(FrugalError, ValueError):
    """Bytes that do not form a valid frame (bad checksum, bad framing, bad value)."""


class SourceError(FrugalError, OSError):
    """A sensor source cannot be opened or read (device gone, permission, timeout)."""


class UplinkError(FrugalError, OSError):
    """An uplink cannot deliver (broker down, auth refused, modem not joined)."""


class ModelError(FrugalError):
    """A model bundle is missing, tampered with, or cannot be loaded or run."""


class CardError(ModelError):
    """A bundle's ``card.json`` breaks its schema (:mod:`frugalai.runtime.card_schema`): a
    field of the wrong type, out of range, with characters or a length it may not have.

    Bad input rather than a failure to run: the CLI exits 2 with the one line, as for a
    :class:`ConfigError`.

    Attributes:
        field: dotted path of the offending field (``features.params.clip``), "" for the
            card as a whole.
    """

    def __init__(self, message: str, field: str = "") -> None:
        self.field = field
        super().__init__(message)
