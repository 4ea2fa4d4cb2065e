"""``frugalai service install-collector``: the central side's unit, ``frugalai collect`` as a
service, hardened like the gateway's.

The collector runs where the operator keeps the events (a server beside the broker, not a
gateway). Its unit comes from the template ``frugalai-collect.service`` shipped in this
package and has the gateway unit's hardening (read-only system, homes hidden, private /tmp, no
privilege, no capability, the same system-call filter), with ``PrivateDevices=yes`` since it
opens no serial port: the directory of the database (``--out``) is the only writable path.

The broker URL goes on ``ExecStart=``, which ``systemctl status`` and the process list show:
a password in it is refused (``?password_file=`` names a file the service user reads instead).
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from frugalai.errors import ConfigError
from frugalai.service.install import check_interpreter, exec_start, unit_value

#: the template shipped beside the gateway's.
TEMPLATE = "frugalai-collect.service"
DEFAULT_OUT = "/var/lib/frugalai-collector/events.sqlite"
DEFAULT_CLIENT_ID = "frugalai-collector"


def template() -> str:
    return resources.files("frugalai.service").joinpath(TEMPLATE).read_text()


def check_broker_url(url: str) -> str:
    """``url`` if it can go on ``ExecStart=``: a valid broker URL without a password in it."""
    from frugalai.fleet.link import parse_broker

    parse_broker(url)  # scheme, host, port, options, and a password_file the installer reads
    if urlsplit(url).password is not None:
        raise ConfigError("a password in the URL would be in the unit file and the process "
                          "list; put it in a file the service user can read and name that "
                          "file with the URL's password_file option", key="--broker")
    if any(c in url for c in " \t\"'\\$;"):
        raise ConfigError(f"a broker URL in a systemd unit cannot hold spaces, quotes, '\\', "
                          f"'$' or ';', got {url!r}", key="--broker")
    return unit_value(url, "--broker")


def render_collector_unit(broker: str, out: str = DEFAULT_OUT, user: str = "frugalai-collector",
                          client_id: str = DEFAULT_CLIENT_ID, chirpstack: bool = False,
                          executable: Optional[str] = None) -> str:
    """The unit text; ConfigError naming the option when it cannot run as a service."""
    if not os.path.isabs(out):
        raise ConfigError(f"must be an absolute path for a service (like {DEFAULT_OUT}), got "
                          f"{out!r}", key="--out")
    if not user or not user.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"invalid user name {user!r}", key="--user")
    if not client_id or not client_id.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"letters, digits, '-' and '_' only, got {client_id!r}",
                          key="--client-id")
    broker = check_broker_url(broker)  # what the user typed first, then where frugalai lives
    executable = executable or sys.executable
    binds = check_interpreter(executable, user)
    out = os.path.normpath(out)
    state = os.path.dirname(out)
    state_directory = ""
    if state.startswith("/var/lib/"):
        state_directory = (f"StateDirectory={unit_value(state[len('/var/lib/'):], '--out')}\n"
                           "StateDirectoryMode=0750\n")
    values = {
        "@EXEC@": exec_start(executable),
        "@BROKER@": broker,
        "@BROKER_HOST@": unit_value(urlsplit(broker).hostname or "", "--broker"),
        "@OUT@": unit_value(out, "--out", path=True),
        "@CLIENT_ID@": client_id,
        "@CHIRPSTACK@": " --chirpstack" if chirpstack else "",
        "@USER@": user,
        "@STATE_DIRECTORY@": state_directory,
        "@STATE_DIR@": unit_value(state, "--out", path=True),
    }
    text = template()
    for mark, value in values.items():
        text = text.replace(mark, value)
    if binds:  # as for the gateway: a venv under a home is bound read-only into empty homes
        text = text.replace("ProtectHome=yes\n", (
            "ProtectHome=tmpfs\n"
            f"BindReadOnlyPaths={' '.join(unit_value(b, 'ExecStart', path=True) for b in binds)}\n"))
    return text


def state_dir_of(out: str) -> Path:
    return Path(os.path.dirname(os.path.normpath(out)))
