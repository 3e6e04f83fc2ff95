"""A terminal progress bar for wait(progress=True): redrawn in place on a terminal, sparse lines elsewhere."""

import sys
import time


class ProgressBar:
    """`update(fraction, text)` as often as you like; a terminal sees one line redrawn, a log one line per 10 %."""

    def __init__(self, label: str, *, stream=None, width: int = 30):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.monotonic()
        self._last_logged: tuple[int, str] | None = None

    def line(self, fraction: float, text: str = "") -> str:
        fraction = min(max(fraction or 0.0, 0.0), 1.0)
        filled = round(self.width * fraction)
        elapsed = time.monotonic() - self.started
        bar = "#" * filled + "-" * (self.width - filled)
        return f"{self.label} [{bar}] {fraction * 100:5.1f}% {elapsed:6.1f}s {text}".rstrip()

    def update(self, fraction: float, text: str = "") -> None:
        if self.interactive:
            self.stream.write("\r\x1b[2K" + self.line(fraction, text))
            self.stream.flush()
            return
        key = (int((fraction or 0.0) * 10), text)
        if key != self._last_logged:
            self._last_logged = key
            self.stream.write(self.line(fraction, text) + "\n")
            self.stream.flush()

    def close(self, fraction: float = 1.0, text: str = "") -> None:
        self.stream.write(("\r\x1b[2K" if self.interactive else "") + self.line(fraction, text) + "\n")
        self.stream.flush()
