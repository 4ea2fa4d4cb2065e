"""The script a territory's engineer would write instead of frugalai (issue 26's yardstick).

csv reader -> window means -> the model's features -> onnxruntime, one row per window -> an
event line appended to a file when the alarm (or the class) changes. No framework, no outbox,
no supervision: what frugalai is compared with, whole process, in benchmarks/whole_process.py.
It uses the bundle's own ONNX file and the card's parameters so both compute the same thing;
the coastal tide comes in blocks of 256 hours from the card's constants (a user would call a
tide library the same way).
"""
import argparse
import csv
import gzip
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import onnxruntime as ort

p = argparse.ArgumentParser()
for opt in ("--data", "--bundle", "--onnx", "--out", "--time-col", "--value-col"):
    p.add_argument(opt, required=True)
p.add_argument("--window-s", type=int, required=True)
p.add_argument("--tz-hours", type=float, default=0.0)
a = p.parse_args()
card = json.load(open(f"{a.bundle}/card.json"))  # noqa: SIM115  (a plain script)
so = ort.SessionOptions()
so.intra_op_num_threads = 1
sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
inp, out_name = sess.get_inputs()[0].name, sess.get_outputs()[0].name
tz = timezone(timedelta(hours=a.tz_hours))
coastal = card["features"]["kind"] == "coastal"
if coastal:
    # the tide: frugalai's harmonic engine, standing for the tide library a user would call
    from frugalai.features.tide import Tide
    tide, prm = Tide.from_dict(card["features"]["tide"]), card["features"]["params"]
    thr, ahead, block, levels, prev = prm["threshold_m"], prm["horizon_h"], {}, [], None
else:
    prm, pol = card["features"]["params"], card["policy"]
    hist: dict[tuple[int, int], list[float]] = {}
    resid: list[float] = []
events = open(a.out, "a")  # noqa: SIM115
opener = gzip.open if a.data.endswith(".gz") else open
state, win, acc, n = 0, None, [], 0
with opener(a.data, "rt", newline="") as fh:
    for row in csv.DictReader(fh):
        try:
            ts = datetime.fromisoformat(row[a.time_col]).replace(tzinfo=tz).timestamp()
            v = float(row[a.value_col])
        except (ValueError, KeyError):
            continue
        n += 1
        w = int(ts // a.window_s)
        if win is not None and w != win and acc:
            t, x = win * a.window_s, sum(acc) / len(acc)
            if coastal:
                if t not in block:
                    block = dict(zip(range(int(t), int(t) + 3600 * 256, 3600),
                                     tide.predict(np.arange(t, t + 3600 * 256, 3600)).tolist()))
                tides = [block.get(t + 3600 * h) or float(tide.predict([t + 3600 * h])[0])
                         for h in range(ahead + 1)]
                levels = ([*levels, x - tides[0]])[-4:]
                s = levels[-1]
                f = [x - thr, s, s - levels[-2] if len(levels) > 1 else 0.0,
                     s - levels[0] if len(levels) > 3 else 0.0,
                     x - prev if prev is not None else 0.0,
                     *(tt - thr for tt in tides[1:]), max(tides[1:]) + s - thr]
                prev = x
            else:
                lt = datetime.fromtimestamp(t, tz)
                key = (lt.weekday() >= 5, (lt.hour * 3600 + lt.minute * 60) // prm["slot_s"])
                h = hist.setdefault(key, [])
                med = sorted(h)[len(h) // 2] if h else x
                mad = sorted(abs(y - med) for y in h)[len(h) // 2] if h else 0.0
                r = (x - med) / max(mad, prm["floor_rel"] * abs(med), prm["floor_level"])
                resid = ([*resid, max(-prm["clip"], min(prm["clip"], r))])[-prm["window"]:]
                h[:] = [*h, x][-prm["history"]:]
                f = [0.0] * (prm["window"] - len(resid)) + resid
            y = sess.run([out_name], {inp: np.asarray([f], np.float32)})[0][0]
            if coastal:
                new = int(np.argmax(y))
            else:  # the card's score and hysteresis
                score = float(np.sqrt(np.mean(np.square(y))))
                new = int(score >= pol["on"] or (state == 1 and score > pol["off"]))
            if new != state:
                state = new
                events.write(json.dumps({"t": t, "state": new}) + "\n")
                events.flush()
            acc = []
        win = w
        acc.append(v)
print(json.dumps({"readings": n}))
