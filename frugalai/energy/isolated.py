"""The child process of :func:`frugalai.energy.harness.run_isolated`: one workload, measured.

``python -m frugalai.energy.isolated SPEC_JSON`` rebuilds the workload from its JSON spec
(:func:`frugalai.energy.workloads.build`), opens the meter, measures with the harness and prints
the result as JSON on stdout. It sits above both the harness and the workloads, so neither
imports the other.
"""

from __future__ import annotations

import json
import sys

from frugalai.energy.base import open_meter
from frugalai.energy.harness import HarnessConfig, measure
from frugalai.energy.workloads import build


def main(argv: list[str]) -> int:
    args = json.loads(argv[0])
    workload = build(args["spec"])
    with open_meter(args["meter"]) as meter:
        result = measure(workload, meter, HarnessConfig(**args["config"]), idle_w=args["idle_w"])
    result["spec"] = args["spec"]
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
