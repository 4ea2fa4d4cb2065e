"""``frugalai emulate``: one emulated device on a pty, and the source URL to put in a config.

Try it without hardware: ``frugalai emulate tic --speed 600`` prints a path and a whole config
(``[gateway]``, the ``[[flow]]`` reading the emulator, a ``stdout://`` uplink); saved to a file,
``frugalai run --config`` on it reads the emulator as it would read a meter.

Time: a device emulated faster than real time must tell the gateway what time it is, or a
15-minute window would close every 15 real minutes. A Linky in standard mode sends its own date
(``DATE`` group, to the second) and the serial source can stamp readings with it
(``time=meter``), so ``tic`` at ``--speed`` > 1 runs in standard mode with that option. The other
devices send no time: sped up, their readings are stamped on arrival (the gateway's clock).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from frugalai.sim.clock import SimClock

KINDS = ("tic", "modbus", "fb-node", "rak3172", "rn2483")
SCENARIOS = ("normal", "anomalies")

#: Monday 5 January 2026, 00:00 Europe/Paris: the demo's start, where its anomalies are.
ANOMALY_START = 1_767_567_600.0


@dataclass
class Launched:
    """A started emulator: what to stop, where it is, and how to configure the gateway."""

    kind: str
    path: str
    url: str
    config: str
    notes: list[str] = field(default_factory=list)
    parts: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for part in reversed(self.parts):
            part.close()


def launch(kind: str, speed: float = 1.0, scenario: str = "normal", seed: int = 1,
           start: float | None = None) -> Launched:
    """Start the emulator ``kind``; ValueError for an unknown kind, scenario or speed."""
    if kind not in KINDS:
        raise ValueError(f"unknown device {kind!r}; known: {', '.join(KINDS)}")
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    from frugalai.sim.household import HouseholdProfile, demo_anomalies

    anomalies = scenario == "anomalies"
    if start is None:
        start = ANOMALY_START if anomalies else time.time()
    clock = SimClock(start, speed)
    notes: list[str] = []
    if speed > 1 and kind != "tic":
        notes.append(f"{kind} sends no time: at --speed {speed:g} the gateway stamps readings "
                     "on arrival, so windows are in real time")
    if anomalies and kind not in ("tic", "modbus"):
        notes.append(f"scenario 'anomalies' is for the energy meters; {kind} runs normally")
    profile = HouseholdProfile(seed=seed, anomalies=demo_anomalies(start) if anomalies else ())
    if kind in ("tic", "rn2483"):
        meter, url, flow = _tic(profile, clock, speed, seed, notes)
        if kind == "tic":
            return Launched(kind, meter.path, url, _config(kind, flow), notes, [meter])
        from frugalai.sim.lora_modem import Rn2483Emulator

        tx = Rn2483Emulator(clock=clock, seed=seed).start()
        up = f"lorawan://{tx.path}?modem=rn2483&dr=5&port=10"
        notes.append("an uplink modem: events leave through it (joined on the first send); a "
                     f"Linky emulated beside it on {meter.path} gives the flow something to read")
        return Launched(kind, tx.path, up, _config(kind, flow, up), notes, [meter, tx])
    if kind == "modbus":
        from frugalai.sim.modbus_meter import ModbusMeterEmulator

        modbus = ModbusMeterEmulator(profile, slaves=(1,), clock=clock, seed=seed).start()
        url = f"serial://{modbus.port.path}?protocol=modbus&slaves=1&map=sdm630&interval=10"
        flow = _flow("meter", url, 'quantity = "power_w"\naggregate = "mean"\nmodel = "profile"')
        return Launched(kind, modbus.port.path, url, _config(kind, flow), notes, [modbus])
    if kind == "fb-node":
        from frugalai.sim.fb_node import FbNodeEmulator

        node = FbNodeEmulator(clock=clock, seed=seed).start()
        url = f"serial://{node.port.path}?protocol=fb"
        flow = _flow("tide", url, 'quantity = "water_level_m"\naggregate = "mean"\n'
                     'window_s = 3600\nmodel = "coastal-submersion"')
        return Launched(kind, node.port.path, url, _config(kind, flow), notes, [node])
    from frugalai.sim.coastal_node import CoastalNode, fb_encoder
    from frugalai.sim.lora_modem import Rak3172Emulator

    modem = Rak3172Emulator(seed=seed).start()
    encode = fb_encoder(node_id=7)
    tide_node = CoastalNode(modem, encode, clock, period_s=600.0, seed=seed).start()
    url = f"lora://{modem.path}?modem=rak3172&decoder=fb&node=7"
    notes.append("a tide-gauge node (id 7) transmits every 10 simulated minutes; the modem "
                 "hears it once the gateway has put it in receive mode")
    flow = _flow("tide", url, 'quantity = "water_level_m"\naggregate = "mean"\n'
                 'window_s = 3600\nmodel = "coastal-submersion"')
    return Launched(kind, modem.path, url, _config(kind, flow), notes, [modem, tide_node])


def _tic(profile: Any, clock: SimClock, speed: float, seed: int,
         notes: list[str]) -> tuple[Any, str, str]:
    """An emulated Linky: (the emulator, its source URL, its ``[[flow]]`` block)."""
    from frugalai.sim.tic_meter import TicMeterEmulator

    fast = speed > 1
    meter = TicMeterEmulator(profile, clock, frame_period_s=60.0 if fast else 1.5,
                             seed=seed, mode="standard" if fast else "historique")
    meter.start()
    url = (f"serial://{meter.path}?protocol=tic&mode=standard&time=meter" if fast
           else f"serial://{meter.path}?protocol=tic&mode=historique")
    if fast:
        notes.append("standard mode, one frame a simulated minute; time=meter stamps "
                     "readings with the meter's DATE")
    flow = _flow("linky", url, 'quantity = "energy_total_wh"\naggregate = "rate"\n'
                 'model = "energy-anomaly"')
    return meter, url, flow


def _flow(name: str, url: str, rest: str) -> str:
    return f'[[flow]]\nname = "{name}"\nsource = "{url}"\nsensor_id = 1\n{rest}\n'


def _config(kind: str, flow: str, lorawan: str = "") -> str:
    """A whole config that ``frugalai run`` takes as is: the gateway (its state in ./state,
    the default, beside where it runs), the flow, and events printed on stdout (and sent
    through the emulated LoRaWAN modem, for ``rn2483``)."""
    text = (f'[gateway]\nid = "emulated-{kind}"\nstate_dir = "./state"\n\n{flow}\n'
            '[[uplink]]\nurl = "stdout://"\n')
    if lorawan:
        text += f'\n[[uplink]]\nurl = "{lorawan}"\n'
    return text
