"""One place that hides secrets from messages, logs and status files.

Secrets reach text in two shapes: the password of an URL's user info
(``mqtts://gw:s3cret@broker``) and the value of a secret-looking option
(``?password=s3cret``, ``password_file=/etc/...``, ``token=...``). :func:`redact` replaces both
with ``***`` anywhere in a text, so it can be applied to a whole error message or log line, not
only to an URL. Every :class:`~frugalai.errors.ConfigError` message goes through it, and
:class:`RedactingFilter` applies it to every log record the service writes.

>>> redact("unknown option(s) x in 'mqtts://gw:s3cret@broker.example:8883/t?password=p'")
"unknown option(s) x in 'mqtts://gw:***@broker.example:8883/t?password=***'"
>>> redact("serial:///dev/ttyUSB0?protocol=tic")
'serial:///dev/ttyUSB0?protocol=tic'
"""

from __future__ import annotations

import logging
import re

MASK = "***"

#: ``scheme://user:password@``: the user info ends at the last '@' before the host (as
#: ``urlsplit`` reads it), so a raw '@' in the password is hidden too.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:'\"]*):(?P<secret>[^\s/?#]*)@")
#: the same without a scheme (``gw:s3cret@host``, a URL missing its ``//``).
_BARE_USERINFO = re.compile(r"(?<![\w/:.+-])(?P<head>[\w.+-]+):(?P<secret>[^\s/?#@'\"]+)@(?=[\w\[])")
#: option names whose value is, or points to, a secret.
SECRET_OPTIONS = ("password", "passwd", "pass", "pwd", "secret", "token", "api_key", "apikey",
                  "app_key", "appkey", "nwk_key", "password_file", "secret_file", "token_file")
_OPTION = re.compile(r"(?P<head>(?:^|[?&;\s'\"(])(?:" + "|".join(SECRET_OPTIONS)
                     + r")=)(?P<secret>[^&;\s'\"#)]*)", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every URL password and secret option value replaced by ``***``."""
    if "=" not in text and "@" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    text = _BARE_USERINFO.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    return _OPTION.sub(lambda m: m.group("head") + (MASK if m.group("secret") else ""), text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message of every record it sees.

    Installed on the service's log handler, so a secret in a third-party message or in an
    exception's text never reaches journald.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        clean = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if clean != message:
            record.msg, record.args = clean, None
        return True


__all__ = ["MASK", "SECRET_OPTIONS", "RedactingFilter", "redact"]
