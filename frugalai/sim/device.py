"""The life cycle shared by the emulated devices: a daemon thread, stop, close, ``with``."""

from __future__ import annotations

import threading
from typing import Any, Optional, TypeVar

from frugalai.sim.pty import PtyPort

D = TypeVar("D", bound="EmulatedDevice")


class EmulatedDevice:
    """Base of the emulators that own a pty: ``run`` goes in a daemon thread.

    Subclasses set ``port``, create ``_stop`` and ``_thread = None`` in ``__init__`` and
    implement ``run`` (which returns when ``_stop`` is set).
    """

    thread_name = "emulator"
    port: PtyPort
    _stop: threading.Event
    _thread: Optional[threading.Thread]

    def run(self, *args: Any) -> None:
        raise NotImplementedError

    def _thread_label(self) -> str:
        return self.thread_name

    def _start_thread(self, *args: Any) -> None:
        self._thread = threading.Thread(target=self.run, args=args, daemon=True,
                                        name=self._thread_label())
        self._thread.start()

    def start(self: D) -> D:
        """Run in a daemon thread."""
        self._start_thread()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        """Stop and release the pty (a device unplugged for good); safe to call twice."""
        self.stop()
        self.port.close()

    def __enter__(self: D) -> D:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
