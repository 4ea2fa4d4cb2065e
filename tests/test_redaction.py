"""No secret in an error message or a log line (issue 14, item 9).

An unknown URL option used to make the error print the whole URL, MQTT password included, at
start and in the log of a refused reload. Every error path of every registered URL handler is
tried here with a ``user:password@`` URL and a ``password=`` / ``password_file=`` option; the
real daemon is started and reloaded with such a URL.
"""

from __future__ import annotations

import doctest
import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from service_helpers import ROOT, Daemon, flow_toml, gateway_toml, start_meter, status, wait_for

from frugalai import redact as redact_module
from frugalai import registry
from frugalai.errors import ConfigError, UplinkError
from frugalai.redact import RedactingFilter, redact

SECRETS = ("s3cret-pw", "hunter2-pw", "secret-file-path")

#: the same secrets on every error path: an unknown option, a duplicated option, an option
#: holding the password, a password file.
URL_TAILS = [
    "//gw:s3cret-pw@host/dev/x?bogus=1",
    "//gw:s3cret-pw@host/dev/x?password=hunter2-pw",
    "//gw:s3cret-pw@host/dev/x?bogus=1&bogus=2",
    "//gw@host/dev/x?password=hunter2-pw&bogus=1",
    "//gw@host/dev/x?password_file=/run/secret-file-path&bogus=1",
    "//gw:s3cret-pw@host:notaport/x?password_file=/run/secret-file-path",
    "//gw:s3cret-pw@host/dev/x?protocol=modbus&password=hunter2-pw",
]


def handlers() -> list[tuple[str, str]]:
    return ([("source", n) for n in registry.sources.names()]
            + [("uplink", n) for n in registry.uplinks.names()])


def clean(text: str) -> bool:
    return not any(s in text for s in SECRETS)


@pytest.mark.parametrize("tail", URL_TAILS)
@pytest.mark.parametrize(("kind", "scheme"), handlers())
def test_every_url_handler_error_hides_the_secrets(kind: str, scheme: str, tail: str) -> None:
    url = f"{scheme}:{tail}"
    reg = registry.sources if kind == "source" else registry.uplinks
    extra = {"sensor": "a"} if kind == "source" else {"gateway": "gw"}
    with pytest.raises(Exception) as caught:  # any error: its text is what is checked
        sink = reg.get(scheme)(url, key=f"{kind}[0].url", **extra)
        getattr(sink, "close", lambda: None)()
        pytest.fail(f"{url} was accepted")
    err = caught.value
    assert isinstance(err, (ConfigError, OSError, ValueError)), repr(err)
    assert clean(str(err)) and clean(repr(err)), str(err)


def test_split_url_and_check_options_hide_the_secrets() -> None:
    for url in ("mqtt://u:s3cret-pw@h?qos=1&qos=2", "nourl-u:s3cret-pw@h?password=hunter2-pw"):
        with pytest.raises(ConfigError) as caught:
            registry.split_url(url, key="uplink[0].url")
        assert clean(str(caught.value)), str(caught.value)
    with pytest.raises(ConfigError) as caught:
        registry.check_options("mqtt://u:s3cret-pw@h?password=hunter2-pw",
                               {"password": "hunter2-pw"}, {"qos": "1 or 2"}, key="k")
    assert clean(str(caught.value)) and "mqtt://u:***@h?password=***" in str(caught.value)


def test_errors_and_logs_are_redacted_whatever_the_raiser_wrote() -> None:
    assert clean(str(UplinkError("cannot reach mqtts://gw:s3cret-pw@broker:8883")))
    assert clean(ConfigError("bad mqtt://gw:s3cret-pw@h", key="x").reason)
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture()
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("test.redaction")
    log.addHandler(handler)
    try:
        log.error("uplink %s down", "mqtt://gw:s3cret-pw@h?password_file=/run/secret-file-path")
        try:
            raise RuntimeError("plugin failed on mqtt://gw:s3cret-pw@h")
        except RuntimeError:
            log.exception("reload refused")
    finally:
        log.removeHandler(handler)
    assert len(lines) == 2 and all(clean(line) for line in lines), lines
    assert "mqtt://gw:***@h?password_file=***" in lines[0]


def test_redact_doctests_and_edge_cases() -> None:
    assert doctest.testmod(redact_module).failed == 0
    assert redact("mqtt://u:p@ss@host:1883/x") == "mqtt://u:***@host:1883/x"
    assert redact("password_env=FRUGALAI_PW") == "password_env=FRUGALAI_PW"  # a name, no secret
    assert redact("got 'mqtt:gw:pw@host'") == "got 'mqtt:***@host'"  # a URL missing its //
    assert redact("at 12:30 on mqtt://h:1883/x") == "at 12:30 on mqtt://h:1883/x"
    assert redact("in 'mqtt://u:p@h/x' (mail me@x)") == "in 'mqtt://u:***@h/x' (mail me@x)"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "frugalai", *args], capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          timeout=60)


BAD_MQTT = "mqtt://gw:s3cret-pw@127.0.0.1:1/?bogus=1"


def test_the_daemon_never_prints_the_password_at_start_or_on_a_refused_reload(
        tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "gateway.toml"
    flow = flow_toml("linky", tmp_path / "ttya", 1)
    config.write_text(gateway_toml(state, [flow], [BAD_MQTT]))
    start = run_cli("run", "--config", str(config), "--duration", "1")
    assert start.returncode == 2 and "unknown option(s) bogus" in start.stderr, start.stderr
    assert clean(start.stdout + start.stderr), start.stderr
    meter = start_meter(tmp_path / "ttya")
    config.write_text(gateway_toml(state, [flow], [f"file://{tmp_path / 'events.jsonl'}"]))
    daemon = Daemon(config, tmp_path / "log.txt")
    try:
        daemon.wait_running(state)
        config.write_text(gateway_toml(state, [flow], [BAD_MQTT]))
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in daemon.log_text(), what="the refused reload")
        wait_for(lambda: status(state).get("reloads_refused") == 1, what="status updated")
        assert "unknown option(s) bogus" in daemon.log_text()
        assert clean(daemon.log_text()), daemon.log_text()
        assert clean((state / "status.json").read_text())
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.alive():
            daemon.kill()
        meter.close()
