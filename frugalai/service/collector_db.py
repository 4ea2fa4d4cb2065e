"""What a PostgreSQL collector unit may hold: a connection string without a password, a pgpass
file the service user can read, an MQTT 5 share group; checked at install time.

The connection string goes on ``ExecStart=``, which ``systemctl status`` and the process list
show, so a password in it is refused, as in the broker URL. The password comes from libpq's own
mechanism instead: ``PGPASSFILE`` (``Environment=`` in the unit) names a file that libpq reads
only when it is private (mode 0600 or stricter) and that the service user must own, since
nobody else can read a 0600 file.

The string is parsed by libpq itself (``psycopg.conninfo.conninfo_to_dict``: the parser
``psycopg.connect`` uses when the collector starts), so what the installer accepts is what the
collector will; no second parser to drift from it.
"""

from __future__ import annotations

import os
import pwd
import stat
from typing import Optional

from frugalai.errors import ConfigError
from frugalai.fleet.pgstore import is_postgres
from frugalai.fleet.topics import share_problem
from frugalai.service.install import (
    PROTECTED_HOME,
    _blocked_dir,
    _under,
    _user_ids,
    unit_value,
)

#: characters that cannot go unquoted on ``ExecStart=`` (the broker URL's rule).
_UNSAFE_ON_EXEC = " \t\"'\\$;"


def check_dsn(dsn: str) -> str:
    """``dsn`` if it can go on ``ExecStart=``: a ``postgresql://`` URI libpq accepts, without a
    password; else ConfigError naming ``--db``."""
    if not is_postgres(dsn):
        raise ConfigError(f"a PostgreSQL connection URI, postgresql://user@host[:port]/db, "
                          f"got {dsn!r}", key="--db")
    from frugalai.extras import require

    require("central", "service install-collector --db")
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(dsn)
    except ProgrammingError as err:  # libpq's message quotes the URI: redacted by ConfigError
        raise ConfigError(f"libpq cannot parse {dsn!r}: {str(err).strip()}", key="--db") from None
    if "password" in params:
        raise ConfigError("a password in the connection string would be in the unit file and "
                          "the process list; put it in a pgpass file the service user owns "
                          "(mode 0600) and name that file with --pgpass", key="--db")
    for port in str(params.get("port", "")).split(","):
        if port and not port.isdigit():
            raise ConfigError(f"port {port!r} is not a number in {dsn!r}", key="--db")
    if any(c in dsn for c in _UNSAFE_ON_EXEC):
        raise ConfigError(f"a connection string in a systemd unit cannot hold spaces, quotes, "
                          f"'\\', '$' or ';', got {dsn!r}", key="--db")
    return unit_value(dsn, "--db")


def check_share(group: str) -> str:
    """The share group as the collector checks it, and safe on ``ExecStart=``."""
    problem = share_problem(group)  # what `frugalai collect --share` refuses
    if problem:
        raise ConfigError(problem, key="--share")
    if any(c in group for c in _UNSAFE_ON_EXEC + "%"):
        raise ConfigError(f"a share group in a systemd unit cannot hold spaces, quotes, '\\', "
                          f"'$', ';' or '%', got {group!r}", key="--share")
    return group


def check_visible(path: str, key: str, instead: str) -> str:
    """``path`` (normalised) if the unit sees the host's file there: absolute, fit for a unit,
    not under a home (``ProtectHome=``), ``/tmp`` or ``/var/tmp`` (``PrivateTmp=``) or ``/dev``
    (``PrivateDevices=``), where the service would find nothing or its own private copy."""
    path = os.path.normpath(unit_value(path, key, path=True))
    hidden = _under(path, (*PROTECTED_HOME, "/tmp", "/var/tmp", "/dev"))
    if hidden:
        raise ConfigError(f"{path} is under {hidden}, which the unit hides or makes private "
                          f"(ProtectHome=, PrivateTmp=, PrivateDevices=); use {instead}", key=key)
    return path


def check_pgpass(path: str, user: str) -> Optional[str]:
    """Refuse (ConfigError naming ``--pgpass``) a pgpass file the service cannot use; return
    one line saying what could not be checked here, or None when everything was.

    Checked: an absolute path the unit can see (:func:`check_visible`); the directories on
    the way searchable by ``user``; the file's mode (libpq ignores a pgpass file with any group
    or other bit); its owner is ``user``. A file or a user not there yet cannot be checked:
    that is the line returned.
    """
    path = check_visible(path, "--pgpass", "/etc/frugalai")
    blocked = _blocked_dir(path, user)
    if blocked is not None:
        raise ConfigError(f"user {user!r} cannot reach {path} (no search permission on "
                          f"{blocked})", key="--pgpass")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (f"--pgpass {path} does not exist yet: create it owned by {user}, mode 0600, "
                f"one line host:port:database:user:password")
    except OSError as err:
        return f"--pgpass {path} not checked ({err.strerror})"
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path} is not a regular file", key="--pgpass")
    if st.st_mode & 0o077:
        raise ConfigError(f"{path} has mode {stat.S_IMODE(st.st_mode):04o}: libpq ignores a "
                          f"password file readable by group or others; chmod 0600 {path}",
                          key="--pgpass")
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return (f"--pgpass {path} not checked for user {user} (not created yet): chown {user} "
                f"{path} once it is")
    if st.st_uid != uid:
        try:
            owner = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            owner = str(st.st_uid)
        raise ConfigError(f"{path} belongs to {owner}, mode 0600: user {user!r} cannot read it;"
                          f" chown {user} {path}", key="--pgpass")
    return None



def metrics_dir_problem(directory: str, user: str) -> Optional[str]:
    """One line when ``user`` (existing) cannot write ``directory`` (existing) that the
    collector rewrites its metrics file in, else None: the unit would start and the collector
    stop at its first metrics write, every RestartSec. A directory or user not there yet is the
    installer's to create (the collector's own state directory) or said by the caller."""
    try:
        st = os.stat(directory)
    except OSError:
        return None
    uid, gids = _user_ids(user)
    if uid is None or uid == 0:
        return None
    if st.st_uid == uid:
        ok = st.st_mode & stat.S_IWUSR and st.st_mode & stat.S_IXUSR
    elif st.st_gid in gids:
        ok = st.st_mode & stat.S_IWGRP and st.st_mode & stat.S_IXGRP
    else:
        ok = st.st_mode & stat.S_IWOTH and st.st_mode & stat.S_IXOTH
    if ok:
        return None
    return (f"--metrics: user {user} cannot write {directory} (mode "
            f"{stat.S_IMODE(st.st_mode):04o}): the collector would stop at its first metrics "
            f"file; make it writable for {user} or pick a directory of its own")
