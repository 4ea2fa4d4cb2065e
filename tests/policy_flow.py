"""A threshold flow over a square wave, for the tests of policy plugins (test_plan.py and
test_plugins.py run the same gateway with a different policy each)."""

from __future__ import annotations

from pathlib import Path


def square_wave_csv(tmp_path: Path) -> Path:
    """420 s of 10-s readings of ``x``: 20 in the minutes 1, 2 and 4 of the series, else 0."""
    data = tmp_path / "x.csv"
    if not data.exists():
        rows = [(t, 20.0 if (t // 60) in (1, 2, 4) else 0.0) for t in range(0, 420, 10)]
        data.write_text("timestamp,x\n"
                        + "".join(f"{1_700_000_000 + t},{v}\n" for t, v in rows))
    return data


def policy_flow_config(tmp_path: Path, kind: str, uplink: str, *, name: str = "gateway",
                       policy_extra: str = "") -> Path:
    """A config whose one flow ``x`` (60-s windows of the square wave, ``model =
    "threshold"``) decides with policy ``kind`` (on = 10, off = 5) and sends to ``uplink``."""
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""
[gateway]
state_dir = "{tmp_path / 'state'}"

[[flow]]
name = "x"
source = "replay://{square_wave_csv(tmp_path)}?speed=max"
quantity = "x"
aggregate = "mean"
window_s = 60
model = "threshold"
summary_s = 0
  [flow.policy]
  kind = "{kind}"
  on = 10.0
  off = 5.0
{policy_extra}
[[uplink]]
url = "{uplink}"
""")
    return path
