"""``frugalai service install-collector``: the central side's unit, ``frugalai collect`` as a
service, hardened like the gateway's.

The collector runs where the operator keeps the events (a server beside the broker, not a
gateway). Its unit comes from the template ``frugalai-collect.service`` shipped in this
package and has the gateway unit's hardening (read-only system, homes hidden, private /tmp, no
privilege, no capability, the same system-call filter), with ``PrivateDevices=yes`` since it
opens no serial port. It writes to a SQLite file (``--out``: its directory is the writable path)
or to a territory's PostgreSQL (``--db``: nothing local is written, so no writable path at
all), plus a Prometheus textfile if asked (``--metrics``: its directory becomes writable).
``--name`` and ``--client-id`` let several collectors (one shared subscription, ``--share``)
live on one host.

The broker URL and the connection string go on ``ExecStart=``, which ``systemctl status`` and
the process list show: a password in either is refused (``?password_file=`` names a file the
service user reads for the broker; ``--pgpass`` names libpq's password file, passed as
``PGPASSFILE``; see :mod:`frugalai.service.collector_db`).
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


def render_collector_unit(broker: str, out: Optional[str] = None,
                          user: str = "frugalai-collector",
                          client_id: str = DEFAULT_CLIENT_ID, chirpstack: bool = False,
                          executable: Optional[str] = None, *, db: Optional[str] = None,
                          pgpass: Optional[str] = None, share: Optional[str] = None,
                          metrics: Optional[str] = None, migrate: bool = False) -> str:
    """The unit text; ConfigError naming the option when it cannot run as a service.

    ``out`` (SQLite, the default :data:`DEFAULT_OUT`) or ``db`` (PostgreSQL), never both. With
    ``db`` the unit writes nothing but ``metrics``: no state directory, no writable path, unless
    ``metrics`` is given (its directory becomes the one writable path).
    """
    from frugalai.service.collector_db import check_dsn, check_share, check_visible

    if out is not None and db is not None:
        raise ConfigError("--out (a SQLite file) and --db (PostgreSQL) are exclusive: the "
                          "collector writes one store", key="--db")
    if not user or not user.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"invalid user name {user!r}", key="--user")
    if not client_id or not client_id.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"letters, digits, '-' and '_' only, got {client_id!r}",
                          key="--client-id")
    broker = check_broker_url(broker)  # what the user typed first, then where frugalai lives
    options = []
    if db is not None:
        store = check_dsn(db)
        store_args, kind = f"--db {store}", "PostgreSQL"
        written: list[str] = []
        if migrate:
            options.append("--migrate")
    else:
        out = out if out is not None else DEFAULT_OUT
        if not os.path.isabs(out):
            raise ConfigError(f"must be an absolute path for a service (like {DEFAULT_OUT}), "
                              f"got {out!r}", key="--out")
        if migrate:
            raise ConfigError("applies to a PostgreSQL schema (--db), not to a SQLite file",
                              key="--migrate")
        out = unit_value(os.path.normpath(out), "--out", path=True)
        store, store_args, kind = out, f"--out {out}", "SQLite"
        written = [os.path.dirname(out)]
    if pgpass is not None and db is None:
        raise ConfigError("names libpq's password file: only with --db", key="--pgpass")
    if share is not None:
        options.append(f"--share {check_share(share)}")
    if metrics is not None:
        metrics = check_visible(metrics, "--metrics", "node_exporter's textfile directory")
        options.append(f"--metrics {metrics}")
        if os.path.dirname(metrics) not in written:
            written.append(os.path.dirname(metrics))
    if chirpstack:
        options.append("--chirpstack")
    environment = ""
    if pgpass is not None:
        pgpass = check_visible(pgpass, "--pgpass", "/etc/frugalai")
        environment = f"Environment=PGPASSFILE={pgpass}\n"
    executable = executable or sys.executable
    binds = check_interpreter(executable, user)
    state = written[0] if written else None
    state_directory = ""
    if db is None and state is not None and state.startswith("/var/lib/"):
        # the SQLite file's own directory; never a metrics directory, which systemd would
        # chown (recursively) to this user: node_exporter's own textfile directory, say
        state_directory = (f"StateDirectory={unit_value(state[len('/var/lib/'):], '--out')}\n"
                           "StateDirectoryMode=0750\n")
    values = {
        "@EXEC@": exec_start(executable),
        "@BROKER@": broker,
        "@BROKER_HOST@": unit_value(urlsplit(broker).hostname or "", "--broker"),
        "@STORE_KIND@": kind,
        "@STORE@": store,
        "@STORE_ARGS@": store_args,
        "@CLIENT_ID@": client_id,
        "@OPTIONS@": "".join(f" {o}" for o in options),
        "@ENVIRONMENT@": environment,
        "@USER@": user,
        "@STATE_DIRECTORY@": state_directory,
        "@WORKING_DIR@": state or "/",
        "@READ_WRITE_PATHS@": f"ReadWritePaths={' '.join(written)}\n" if written else "",
    }
    text = template()
    for mark, value in values.items():
        text = text.replace(mark, value)
    if binds:  # as for the gateway: a venv under a home is bound read-only into empty homes
        text = text.replace("ProtectHome=yes\n", (
            "ProtectHome=tmpfs\n"
            f"BindReadOnlyPaths={' '.join(unit_value(b, 'ExecStart', path=True) for b in binds)}\n"))
    return text


def state_dir_of(out: Optional[str] = None, db: Optional[str] = None,
                 metrics: Optional[str] = None) -> Optional[Path]:
    """The directory the installer creates for the service user: the SQLite file's, else the
    metrics file's; None for a PostgreSQL collector that writes no metrics."""
    if db is None:
        return Path(os.path.dirname(os.path.normpath(out if out is not None else DEFAULT_OUT)))
    if metrics is not None:
        return Path(os.path.dirname(os.path.normpath(metrics)))
    return None
