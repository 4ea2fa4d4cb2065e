"""Config values that would break the service silently (issue 14, item 8).

``nan`` compares false with every threshold (``policy.on = nan`` never alarms) and
``watchdog_s = nan`` writes a ``WatchdogSec=`` systemd ignores; a newline in ``state_dir``
followed by ``User=root`` would add a setting to the unit. All are refused with exit code 2
naming the key, before anything reaches a unit file.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from service_helpers import unit_user

from frugalai.cli import cli
from frugalai.config import Config, load_config, loads_config
from frugalai.errors import ConfigError
from frugalai.service.install import render_unit

BASE = '[[flow]]\nname = "a"\nsource = "serial:///dev/ttyUSB0?protocol=tic"\n'

#: every float key of the schema: (table header, key).
FLOAT_KEYS = [
    ("[flow.policy]", "on"), ("[flow.policy]", "off"), ("[flow.policy]", "max_per_hour"),
    ("[flow.profile]", "floor"), ("[flow.profile]", "tz_offset_h"), ("", "threshold_m"),
    ("[flow.spec]", "battery_min_v"),
    ("[service]", "status_interval_s"), ("[service]", "stop_timeout_s"),
    ("[service]", "stall_s"), ("[service]", "watchdog_s"),
    ("[service]", "model_failure_exit_s"),
    ("[energy]", "co2_g_per_kwh"), ("[energy]", "radio_tx_w"),
    ("[energy]", "fair_use_s_per_day"), ("[energy]", "events_per_day"),
    ("[energy]", "electricity_eur_per_kwh"), ("[energy]", "cellular_eur_per_mb"),
    ("[energy]", "storage_uj_per_write"), ("[energy]", "board_embodied_kg_co2e"),
    ("[energy]", "board_lifetime_years"),
]


def dotted(table: str, key: str) -> str:
    if table.startswith("[flow."):
        return f"flow[0].{table[6:-1]}.{key}"
    return f"{table[1:-1]}.{key}" if table else f"flow[0].{key}"


def test_the_list_covers_every_float_key() -> None:
    from frugalai.config import describe_schema

    # card-owned keys show "card|<built-in default>" (the model card's value, else that)
    builtin = {k: d.split("|")[-1] for k, d, _ in describe_schema()}
    floats = {k for k, default in builtin.items() if "." in default
              and default.replace(".", "").replace("-", "").replace("e", "").isdigit()}
    floats.add("flow[].threshold_m")  # Optional[float], default None
    declared = {dotted(t, k).replace("flow[0]", "flow[]") for t, k in FLOAT_KEYS}
    assert floats == declared


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e308", "-1e308"])
@pytest.mark.parametrize(("table", "key"), FLOAT_KEYS)
def test_non_finite_and_absurd_numbers_exit_2_naming_the_key(
        tmp_path: Path, table: str, key: str, value: str) -> None:
    body = f"{key} = {value}\n"
    if table.startswith("[flow.") or not table:
        text = BASE + ("" if not table else f"  {table}\n") + body
    else:
        text = BASE + f"{table}\n{body}"
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 2, result.output
    assert dotted(table, key) + ":" in result.output


def test_sane_values_still_load() -> None:
    cfg = loads_config({"flow": [{"name": "a", "source": "serial:///dev/x",
                                  "threshold_m": 4.2, "policy": {"on": 3000, "off": -5.0}}],
                        "service": {"watchdog_s": 30}})
    assert cfg.flow[0].policy.on == 3000.0 and cfg.service.watchdog_s == 30.0


@pytest.mark.parametrize("state_dir", ["/var/lib/frugalai\\nUser=root",
                                       "/var/lib/frugalai\\rUser=root",
                                       "/var/lib/a\\u0000b"])
def test_a_newline_in_a_path_never_reaches_the_unit(tmp_path: Path, state_dir: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(f'[gateway]\nstate_dir = "{state_dir}"\n' + BASE)
    result = CliRunner().invoke(cli, ["service", "install", "--config", str(path),
                                      "--dry-run"])
    assert result.exit_code == 2, result.output
    assert "gateway.state_dir: control characters" in result.output
    assert "User=root" not in result.output.splitlines()


def test_the_unit_renderer_checks_values_itself(tmp_path: Path) -> None:
    # Defence in depth: a Config built in code (not loaded) is checked again by the renderer.
    path = tmp_path / "gateway.toml"
    path.write_text('[gateway]\nstate_dir = "/var/lib/frugalai"\n' + BASE)
    cfg = load_config(path)

    def with_gateway(**changes: str) -> Config:
        return dataclasses.replace(cfg, gateway=dataclasses.replace(cfg.gateway, **changes))

    user = unit_user()  # one who can reach this checkout (a 0700 clone: the tester)
    with pytest.raises(ConfigError, match="gateway.state_dir: control characters"):
        render_unit(str(path), with_gateway(state_dir="/srv/gw\nUser=root"), user=user)
    with pytest.raises(ConfigError, match="gateway.id: control characters"):
        render_unit(str(path), with_gateway(id="gw\nExecStartPre=/bin/sh"), user=user)
    with pytest.raises(ConfigError, match="gateway.state_dir: a path in a systemd unit"):
        render_unit(str(path), with_gateway(state_dir="/srv/my gateway"), user=user)
    unit = render_unit(str(path), with_gateway(state_dir="/srv/gw%i"), user=user)
    assert "ReadWritePaths=/srv/gw%%i" in unit.splitlines()  # no specifier expansion
    assert "WorkingDirectory=/srv/gw%%i" in unit.splitlines()


def test_unit_value_doubles_percent_and_refuses_relative_paths() -> None:
    from frugalai.service.install import unit_value

    assert unit_value("gw-100%", "gateway.id") == "gw-100%%"
    with pytest.raises(ConfigError, match="x: must be an absolute path"):
        unit_value("state", "x", path=True)


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze missing: "
                    "scripts/install-sysdeps installs the systemd package")
def test_an_escaped_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[gateway]\nid = "gw-100%"\nstate_dir = "/var/lib/frugal%i"\n' + BASE)
    unit = tmp_path / "frugalai.service"
    unit.write_text(render_unit(str(path), load_config(path), user=unit_user()))
    assert "ReadWritePaths=/var/lib/frugal%%i" in unit.read_text().splitlines()
    verify = subprocess.run([str(SYSTEMD_ANALYZE), "verify", str(unit)], capture_output=True,
                            text=True, cwd=tmp_path)
    assert verify.returncode == 0 and "frugalai.service" not in verify.stderr, verify.stderr
