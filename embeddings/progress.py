"""Progress of long work, counted in what the work is made of (tokens for the encoder, queries for the index,
pairs for the judges), so the time left is honest: a bar on a terminal, a log line every few seconds when
stderr is a file (a scheduled job's log), and nothing for work done within a couple of seconds."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

from tqdm.auto import tqdm

log = logging.getLogger(__name__)

# Seconds before anything shows (short work stays silent), and between two log lines when not on a terminal.
DELAY = 2.0
LOG_EVERY = 10.0


class Progress:
    """``with Progress(total, "embed", "token") as p: p.update(n)``.

    ``enabled`` False shows nothing (workers whose output only reaches their own log).
    """

    def __init__(self, total: int, desc: str, unit: str, *, enabled: bool = True) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done = 0
        self._start = time.monotonic()
        self._logged = self._start
        self._enabled = enabled and total > 0
        interactive = sys.stderr.isatty()
        self._bar = (
            tqdm(total=total, desc=desc, unit=unit, unit_scale=True, delay=DELAY, file=sys.stderr)
            if self._enabled and interactive
            else None
        )
        self._log_lines = self._enabled and not interactive

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._log_lines:
            now = time.monotonic()
            if now - self._logged >= LOG_EVERY and now - self._start >= DELAY:
                self._logged = now
                log.info("%s", self._line(now))

    def _line(self, now: float) -> str:
        """``embed:  25% 1,234/4,936 tokens, 00:10 elapsed, about 00:30 left``: no bar, a line per log record."""
        elapsed = now - self._start
        left = elapsed * (self.total - self.done) / self.done if self.done else 0.0
        return (
            f"{self.desc}: {100 * self.done / self.total:3.0f}% {self.done:,}/{self.total:,} {self.unit}s, "
            f"{tqdm.format_interval(elapsed)} elapsed, about {tqdm.format_interval(left)} left"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._log_lines and self._logged > self._start:  # it said something: say it finished too
            log.info("%s", self._line(time.monotonic()))

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
