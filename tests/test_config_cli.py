"""Config validation and the CLI's exit codes (2 = invalid config, with the key named)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from frugalai.cli import cli
from frugalai.config import load_config

GOOD = """
[gateway]
id = "gw1"
state_dir = "{state}"

[[flow]]
name = "linky"
source = "serial:///dev/ttyUSB0?protocol=tic&mode=historique"
sensor_id = 1

  [flow.policy]
  on = 5.0
  off = 2.5

[[uplink]]
url = "stdout://"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text.format(state=tmp_path / "state"))
    return path


def test_good_config_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.gateway.id == "gw1" and cfg.flow[0].policy.on == 5.0
    result = CliRunner().invoke(cli, ["config", "check", str(write(tmp_path, GOOD))])
    assert result.exit_code == 0, result.output
    assert "OK (1 flow(s), 1 uplink(s))" in result.output


@pytest.mark.parametrize(
    "change,key,words",
    [
        (("on = 5.0", "onn = 5.0"), "flow[0].policy.onn", "unknown key"),
        (("sensor_id = 1", 'sensor_id = "one"'), "flow[0].sensor_id", "expected an integer"),
        (("sensor_id = 1", "sensor_id = 999"), "flow[0].sensor_id", "0-255"),
        (("off = 2.5", "off = 7.0"), "flow[0].policy.off", "<= on"),
        (('id = "gw1"', 'id = "gw/1"'), "gateway.id", "without '/'"),
        (('name = "linky"', ""), "flow[0].name", "required"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, change: tuple[str, str], key: str,
                                           words: str) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert key in result.output and words in result.output


def test_unknown_source_scheme_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("serial:///dev/ttyUSB0", "seriall:///dev/ttyUSB0"))
    result = CliRunner().invoke(cli, ["run", "--config", str(path), "--duration", "0"])
    assert result.exit_code == 2
    assert "flow.linky.source" in result.output and "known: " in result.output
    known = result.output.split("known: ", 1)[1].split("\n", 1)[0]
    assert "serial" in known.split(", ")


def test_unknown_url_option_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("mode=historique", "mdoe=historique"))
    result = CliRunner().invoke(cli, ["run", "--config", str(path), "--duration", "0"])
    assert result.exit_code == 2 and "mdoe" in result.output and "known options" in result.output


def test_not_toml_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[gateway\n")
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 2 and "not valid TOML" in result.output


def test_console_script_exit_code(tmp_path: Path) -> None:
    """The installed entry point, in a real process."""
    path = write(tmp_path, GOOD.replace("on = 5.0", "on = true"))
    proc = subprocess.run([sys.executable, "-m", "frugalai", "config", "check", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "flow[0].policy.on" in proc.stderr and "expected a number" in proc.stderr


def test_the_state_dir_default_is_the_one_the_docs_and_schema_state(tmp_path: Path) -> None:
    """One default for gateway.state_dir, said the same way by the loader, `config schema`,
    the README's config and the setup guide (they used to disagree: ./state vs
    /var/lib/frugalai)."""
    root = Path(__file__).resolve().parents[1]
    default = load_config(write(tmp_path, GOOD.replace('state_dir = "{state}"\n', ""))) \
        .gateway.state_dir
    schema = CliRunner().invoke(cli, ["config", "schema"]).output
    row = next(line for line in schema.splitlines() if "gateway.state_dir" in line)
    assert repr(default) in row and "/var/lib/frugalai" in row, row
    guide = " ".join((root / "docs" / "gateway-setup.md").read_text().split())
    assert f"the built-in default, `{default}`" in guide
    assert "`service install` refuses a relative one" in guide
    # a gateway's config (the README's) sets the absolute path the service needs
    readme = (root / "README.md").read_text()
    assert 'state_dir = "/var/lib/frugalai"' in readme
    relative = CliRunner().invoke(cli, ["service", "install", "--config",
                                        str(write(tmp_path, GOOD.replace(
                                            'state_dir = "{state}"\n', ""))), "--dry-run"])
    assert relative.exit_code == 2 and "gateway.state_dir: must be an absolute path" in \
        relative.output
