"""A gateway process for the crash test: outbox -> Pipeline.flush -> MqttSink, slowly.

    python tests/mqtt_driver.py DB URL N

On first start it stores N events (two sensors) in the outbox at DB; then it delivers them in
small batches through the real Pipeline and MqttSink until the outbox is empty, printing
progress. The test kills it with SIGKILL mid-delivery and starts it again.
"""

from __future__ import annotations

import sys
import time


def main() -> int:
    from frugalai.events.event import Event
    from frugalai.pipeline import Pipeline
    from frugalai.uplink.mqtt import MqttSink
    from frugalai.uplink.outbox import Outbox

    db, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    box = Outbox(db)
    if box.counts()["stored"] == 0:
        box.append_many(Event("alarm" if i % 10 == 0 else "class", f"s{i % 2}", 1.7e9 + i,
                              score=1.0, value=float(i), label=i % 7) for i in range(n))
        print("stored", n, flush=True)
    sink = MqttSink.from_url(url, gateway="crash")
    if not sink.wait_connected(20):
        print("not connected:", sink.last_error, flush=True)
        return 3
    pipeline = Pipeline([], box, [sink])
    while box.depth():
        pipeline.flush(limit=10)
        print("delivered", pipeline.delivered, flush=True)
        time.sleep(0.002)
    print("done", flush=True)
    pipeline.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
