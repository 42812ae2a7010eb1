"""A one-line progress bar on stderr, redrawn in place; silent when disabled."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, enabled: bool = True):
        self.total, self.label, self.enabled = max(total, 1), label, enabled
        self.stream, self.width = sys.stderr, 28
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def update(self, done: int, **stats):
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < self.total and now - self._last_draw < 0.1:  # at most 10 redraws a second
            return
        self._last_draw = now
        filled = int(self.width * done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = now - self.start
        eta = elapsed / done * (self.total - done) if done else 0.0
        extra = " ".join(f"{k} {v:.4f}" for k, v in stats.items())
        self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} "
                          f"{elapsed:5.1f}s eta {eta:4.1f}s {extra}\033[K")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
