"""The emulated clock: starts at the real time, runs `speed` times faster, can be jumped ahead."""

from __future__ import annotations

import threading
import time


class EmulatedClock:
    def __init__(self, speed: float) -> None:
        self._speed = speed
        self._real_start = time.time()
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        """Emulated unix seconds."""
        elapsed = time.time() - self._real_start
        with self._lock:
            return self._real_start + elapsed * self._speed + self._offset

    def advance(self, seconds: float) -> float:
        """Jump forward (never back); returns the new emulated time."""
        with self._lock:
            self._offset += max(0.0, seconds)
        return self.now()

    def real_seconds(self, emulated_seconds: float) -> float:
        return emulated_seconds / self._speed
