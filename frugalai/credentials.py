"""Where a broker password comes from: the URL, a file, or an environment variable — one of them.

Shared by every endpoint that logs into an MQTT broker (the MQTT uplink, the ChirpStack source,
the fleet link) so that the options mean the same everywhere and the messages name the option.
A password file keeps the secret out of the config (which ``config check --explain`` prints) and
out of the process list; ``password_env`` suits containers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Optional

from frugalai.errors import ConfigError

#: URL options naming where the password is, with their one-line help.
PASSWORD_OPTIONS = {
    "password_file": "file holding the password (first line)",
    "password_env": "environment variable holding the password",
}


def read_password(url_password: Optional[str], options: Mapping[str, str], *,
                  key: Optional[str] = None) -> Optional[str]:
    """The password given once: in the URL (``user:pw@``), ``password_file`` or ``password_env``.

    ConfigError (naming ``key``) when it is given twice, the file cannot be read or the variable
    is not set.

    >>> read_password("pw", {})
    'pw'
    >>> read_password(None, {}) is None
    True
    """
    given = [name for name in PASSWORD_OPTIONS if name in options]
    if url_password is not None:
        given.insert(0, "the URL")
    if len(given) > 1:
        raise ConfigError(f"give the password once, not in {' and '.join(given)}", key=key)
    if "password_file" in options:
        try:
            with open(options["password_file"], encoding="utf-8") as fh:
                return fh.read().rstrip("\r\n")
        except OSError as err:
            raise ConfigError(f"cannot read password_file: {err}", key=key) from None
    if "password_env" in options:
        password = os.environ.get(options["password_env"])
        if password is None:
            raise ConfigError(f"environment variable {options['password_env']!r} (password_env) "
                              f"is not set", key=key)
        return password
    return url_password
