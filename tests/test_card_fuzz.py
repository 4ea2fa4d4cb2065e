"""The card boundary (issue 24): hostile cards are refused with one line and exit 2, and no
text of a card reaches the C the native backend compiles.

The regression at the top is the exploit found on 684499a: a card ``name`` closing the C
comment it was written into and defining a constructor; ``frugalai score ./bundle --backend
native`` exited 0 and the constructor had run. 300 fuzzed cards run through the CLI here
(benchmarks/fuzz_cards.py: the same generator, 10^4 cards in ``make fuzz``).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from frugalai.errors import CardError, ModelError
from frugalai.runtime import load_model
from frugalai.runtime.bundle import SIGNATURE, Bundle, is_shipped, verify_bundle, write_card
from frugalai.runtime.card_schema import check_card, parse_card
from frugalai.runtime.model import available, shipped_models_dir
from frugalai.runtime.native import (
    NativeBackend,
    _library_source,
    generate_header,
    prefix_for,
    unavailable_reason,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import fuzz_cards  # noqa: E402

SHIPPED = shipped_models_dir()
FRUGALAI = Path(sys.executable).with_name("frugalai")
needs_cc = pytest.mark.skipif(unavailable_reason() is not None,
                              reason=f"native backend: {unavailable_reason()}")


@pytest.fixture(autouse=True)
def _private_native_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FRUGALAI_NATIVE_CACHE", str(tmp_path / "native-cache"))
    monkeypatch.delenv("FRUGALAI_ALLOW_UNSIGNED_NATIVE", raising=False)


def copy_bundle(tmp_path: Path, base: str = "energy-anomaly", **changes: Any) -> Path:
    """A copy of a shipped bundle with card fields changed (written as raw JSON: no schema
    on the way, as an attacker would)."""
    dest = tmp_path / "bundle"
    shutil.copytree(SHIPPED / base, dest)
    if not changes:
        return dest  # byte for byte the shipped bundle
    card = json.loads((dest / "card.json").read_text())
    card.update(changes)
    (dest / "card.json").write_text(json.dumps(card))
    return dest


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FRUGALAI), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


# --- the regression: the exploit of the issue, through the CLI -------------------------------

@pytest.mark.parametrize("opt_in", [False, True], ids=["plain", "allow-unsigned-native"])
def test_issue_24_exploit_card_name_is_refused_and_runs_nothing(tmp_path: Path,
                                                                opt_in: bool) -> None:
    canary = tmp_path / "canary"
    copy_bundle(tmp_path, name=fuzz_cards.exploit(canary))
    (tmp_path / "data.csv").write_text("time,value\n2024-01-01T00:00:00,1.0\n")
    p = run_cli("score", "./bundle", "--backend", "native", "--data", "data.csv", "--out",
                "out.csv", *(["--allow-unsigned-native"] if opt_in else []), cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    (line,) = p.stderr.splitlines()
    assert line.startswith("error: ") and "card field 'name'" in line
    assert not canary.exists()
    assert not (tmp_path / "out.csv").exists()


@needs_cc
def test_even_past_the_schema_no_card_text_reaches_the_compiled_c(tmp_path: Path) -> None:
    """Defense in depth: a Bundle built by hand (no schema), opted in, with the exploit as its
    name, compiles and loads, and the constructor does not exist: the name is not in the C."""
    canary = tmp_path / "canary"
    hostile = fuzz_cards.exploit(canary)
    src = copy_bundle(tmp_path)
    card = json.loads((src / "card.json").read_text())
    card["name"] = hostile
    backend = NativeBackend().load(Bundle(src, card, allow_unsigned_native=True), "int8")
    assert backend.predict_many([[0.0] * 4]).shape == (1, 1)
    assert not canary.exists()
    from frugalai.runtime.dense import DenseNet

    net = DenseNet.load(src / "weights.npz")
    prefix = prefix_for(hostile)
    source = _library_source(generate_header(net, hostile), prefix)
    rest = source.replace(prefix, "fa_p").replace(prefix.upper(), "FA_P")
    for word in ("constructor", "system", "__attribute__", "touch", str(canary)):
        assert word not in rest  # only inside the one identifier the prefix is
    assert source.count("/*") == source.count("*/")


def test_prefix_is_an_identifier_whatever_the_name() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        name = "".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randrange(0, 80)))
        p = prefix_for(name)
        assert p.isascii() and p.replace("_", "a").isalnum() and p.startswith("fa_")


# --- the fuzz (small run) ---------------------------------------------------------------------

def test_300_fuzzed_cards_are_refused_with_one_line_exit_2_and_no_code_runs(
        tmp_path: Path) -> None:
    doc = fuzz_cards.fuzz(300, seed=2024, root=tmp_path, subprocess_every=60)
    assert doc["failures"] == [], doc["failures"][:3]
    assert doc["canary_created"] == 0
    assert doc["refused_one_line_exit_2"] == doc["runs"] == 300 + doc["runs_subprocess"]
    assert doc["runs_subprocess"] >= 5
    assert len(doc["reasons"]) >= 6  # the generator reaches many different checks


# --- the schema -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["energy-anomaly", "coastal-submersion"])
def test_every_shipped_card_passes_the_schema(name: str) -> None:
    parse_card((SHIPPED / name / "card.json").read_bytes())


@pytest.mark.parametrize("field, value, problem", [
    ("name", "a b", "card field 'name': must be 1-64 of"),
    ("name", "x" * 65, "card field 'name'"),
    ("version", "1.0\n", "card field 'version'"),
    ("task", "regression", "must be one of anomaly, classification"),
    ("policy", {"on": float("nan"), "off": 1.0, "debounce": 1}, "'policy.on': must be a finite"),
    ("policy", {"on": 4.0, "off": 1.0, "debounce": 2.5}, "'policy.debounce': must be an integer"),
    ("policy", {"on": True, "off": 1.0, "debounce": 1}, "'policy.on': must be a number"),
    ("classes", ["normal", "it's"], "'classes[1]': must be an identifier"),
    ("description", "two\nlines", "control character U+000A"),
    ("description", "a */ b", "comment delimiter"),
    ("description", "d" * 5000, "5000 characters long"),
    ("metrics", {"auc": 2 ** 70}, "'metrics.auc': integer out of range"),
    ("surprise", 1, "'surprise': unknown key"),
    ("files", {"../x": {"sha256": "0" * 64, "bytes": 1}}, "plain names inside the bundle"),
])
def test_a_bad_field_is_one_line_naming_it(field: str, value: Any, problem: str) -> None:
    card = json.loads((SHIPPED / "energy-anomaly" / "card.json").read_text())
    card[field] = value
    with pytest.raises(CardError) as err:
        parse_card(json.dumps(card).encode())
    assert problem in str(err.value) and "\n" not in str(err.value)


def test_cross_checks_artifacts_and_self_test() -> None:
    card = json.loads((SHIPPED / "energy-anomaly" / "card.json").read_text())
    card["artifacts"]["onnx"]["fp32"] = "missing.onnx"
    with pytest.raises(CardError, match="'artifacts.onnx.fp32': names 'missing.onnx'"):
        check_card(card)
    card = json.loads((SHIPPED / "energy-anomaly" / "card.json").read_text())
    card["self_test"]["outputs"]["fp32"].pop()
    with pytest.raises(CardError, match="'self_test.outputs.fp32': has 7 rows for 8 inputs"):
        check_card(card)


def test_write_card_refuses_what_loading_would(tmp_path: Path) -> None:
    (tmp_path / "w.npz").write_bytes(b"x")
    with pytest.raises(CardError, match="'name'"):
        write_card(tmp_path, {"name": "bad name */", "task": "anomaly"})
    assert not (tmp_path / "card.json").exists()


def test_every_load_path_checks_the_schema(tmp_path: Path) -> None:
    from frugalai.fleet.health import model_info
    from frugalai.service.models import _card_version, install

    bad = copy_bundle(tmp_path, version="1.0\n#")
    with pytest.raises(CardError, match="'version'"):
        verify_bundle(bad)
    with pytest.raises(CardError, match="'version'"):
        install(bad, tmp_path / "models")
    assert not any((tmp_path / "models").glob("energy-anomaly*"))
    assert _card_version(bad) is None
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "models" / "x").symlink_to(bad)
    assert model_info(tmp_path / "models", "x")["version"] == ""


def test_a_card_error_exits_2_naming_the_field(tmp_path: Path) -> None:
    copy_bundle(tmp_path, task="anomaly\0")
    p = run_cli("models", "show", "./bundle", cwd=tmp_path)
    assert p.returncode == 2 and "card field 'task'" in p.stderr
    assert len(p.stderr.splitlines()) == 1


# --- unsigned bundles and the native backend --------------------------------------------------

def test_shipped_bundles_are_recognised_wherever_they_are_copied(tmp_path: Path) -> None:
    assert is_shipped(verify_bundle(copy_bundle(tmp_path)))
    renamed = tmp_path / "other"
    shutil.copytree(SHIPPED / "energy-anomaly", renamed)
    card = json.loads((renamed / "card.json").read_text())
    card["name"] = "mine"
    (renamed / "card.json").write_text(json.dumps(card))
    assert not is_shipped(verify_bundle(renamed))


@needs_cc
def test_native_refuses_an_unsigned_foreign_bundle_unless_opted_in(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    mine = copy_bundle(tmp_path, name="mine")
    with pytest.raises(ModelError, match="neither"):
        load_model(mine, "native", "int8")
    row = {(a["backend"], a["precision"]): a["unavailable"] for a in available(verify_bundle(mine))}
    assert "neither" in (row[("native", "int8")] or "") and row[("reference", "int8")] is None
    # the install self-test skips what is refused instead of failing the install
    from frugalai.service.models import install

    assert install(mine, tmp_path / "models").changed
    # opted in: by argument, or by the environment
    assert load_model(mine, "native", "int8", allow_unsigned_native=True).predict_one
    monkeypatch.setenv("FRUGALAI_ALLOW_UNSIGNED_NATIVE", "1")
    load_model(mine, "native", "int8")


@needs_cc
def test_native_takes_a_signed_bundle(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    mine = copy_bundle(tmp_path, name="mine")
    key = Ed25519PrivateKey.generate()
    (mine / SIGNATURE).write_bytes(key.sign((mine / "card.json").read_bytes()))
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    model = load_model(mine, "native", "fp32", public_key=pub)
    assert model.bundle.signed


@needs_cc
def test_config_key_opts_in_for_a_flow(tmp_path: Path) -> None:
    from frugalai.config import load_config
    from frugalai.errors import ConfigError
    from frugalai.plan import build_plans

    mine = copy_bundle(tmp_path, name="mine")
    text = f"""
[gateway]
id = "gw"
state_dir = "{tmp_path / 'state'}"

[[flow]]
name = "m"
source = "serial:///dev/ttyUSB0?protocol=tic&mode=historique"
sensor_id = 1
model = "{mine}"
backend = "native"
"""
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"flow.m.backend: .*allow_unsigned_native"):
        build_plans(load_config(str(path)), check_uplinks=False)
    path.write_text(text.replace("[[flow]]", "[models]\nallow_unsigned_native = true\n\n[[flow]]"))
    plan = build_plans(load_config(str(path)), check_uplinks=False)
    assert plan.flows[0].bundle is not None and plan.flows[0].bundle.allow_unsigned_native


def test_train_refuses_a_bad_name_before_training(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from frugalai.cli import cli

    result = CliRunner().invoke(cli, ["train", "anomaly", "--name", "a */ b", "--out",
                                      str(tmp_path / "b")])
    assert result.exit_code == 2 and "Invalid value for '--name'" in result.stderr
    assert not (tmp_path / "b").exists()


@needs_cc
def test_bench_leaves_native_out_for_a_bundle_it_refuses(tmp_path: Path) -> None:
    from frugalai.energy.bench import bundle_specs

    copy_bundle(tmp_path, name="mine")
    specs = bundle_specs(tmp_path, (1,))
    backends = {s["backend"] for s in specs}
    assert "native" not in backends and "reference" in backends
