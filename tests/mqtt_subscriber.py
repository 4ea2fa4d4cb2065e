"""A real paho subscriber for the tests: what arrives at the broker, counted by event id."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Optional


class Subscriber:
    """Subscribes (again after every reconnect) and records every message it gets.

    Args:
        host, port: the broker.
        topics: topic filters to subscribe to, QoS 1.
        username, password, tls_ca: credentials when the broker needs them.
        persistent: a persistent session (clean_session=False, a fixed client id): with a
            broker that persists its sessions, what is published while this subscriber is
            away (a broker restart) waits for it instead of being lost on the way.
    """

    def __init__(self, host: str, port: int, topics: tuple[str, ...] = ("#",),
                 username: Optional[str] = None, password: Optional[str] = None,
                 tls_ca: Optional[str] = None, persistent: bool = False) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self.subscribed = threading.Event()
        self._cond = threading.Condition()
        self._topics = topics
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{id(self)}",
                        clean_session=not persistent)
        if username:
            c.username_pw_set(username, password)
        if tls_ca:
            c.tls_set(ca_certs=tls_ca)
        c.reconnect_delay_set(1, 1)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = self._on_message
        c.on_disconnect = lambda *a: self.subscribed.clear()
        self.client = c
        c.connect_async(host, port, 30)
        c.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError(f"test subscriber could not subscribe on {host}:{port}")

    def _on_connect(self, client: Any, *_: Any) -> None:
        client.subscribe([(t, 1) for t in self._topics])

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    def events(self) -> list[dict[str, Any]]:
        """JSON event payloads received (on .../event topics), in arrival order."""
        with self._cond:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/event")]

    def ids(self) -> list[str]:
        return [e["id"] for e in self.events()]

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
        return True

    def wait_ids(self, n: int, timeout: float = 30.0) -> bool:
        """Wait until ``n`` distinct event ids have arrived."""
        return self.wait_for(lambda: len({e["id"] for e in self._events_nolock()}) >= n, timeout)

    def _events_nolock(self) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p, _ in self.messages if t.endswith("/event")]

    def payloads(self, topic: str) -> list[bytes]:
        with self._cond:
            return [p for t, p, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
