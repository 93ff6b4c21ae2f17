"""Log handlers for the command line; the library itself configures none."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TextIO

__all__ = ["StatusLine", "configure_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class StatusLine:
    """One line at the bottom of a terminal that is rewritten in place.

    Log records and the status line share the terminal, so the handler of
    `configure_logging` clears the line before writing a record and the next
    update draws it again.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._is_shown = False

    def show(self, text: str) -> None:
        """Replace the line with *text*."""
        self._stream.write(f"\r{text}\x1b[K")
        self._stream.flush()
        self._is_shown = True

    def clear(self) -> None:
        """Erase the line, if one is shown."""
        if self._is_shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._is_shown = False


class _StatusAwareHandler(logging.StreamHandler[TextIO]):
    def __init__(self, stream: TextIO, status_line: StatusLine | None) -> None:
        super().__init__(stream)
        self._status_line = status_line

    def emit(self, record: logging.LogRecord) -> None:
        if self._status_line is not None:
            self._status_line.clear()
        super().emit(record)


def configure_logging(
    verbosity: int, *, stream: TextIO, status_line: StatusLine | None = None
) -> Callable[[], None]:
    """Send the ``stale_tokens`` log records to *stream* and return a function that undoes it.

    Args:
        verbosity: -1 for warnings and errors only, 0 for INFO (sweep start
            and end, progress lines, audit events), 1 or more for DEBUG.
        stream: Where records go, normally stderr.
        status_line: The progress line to clear before each record, if any.
    """
    if verbosity < 0:
        level = logging.WARNING
    elif verbosity == 0:
        level = logging.INFO
    else:
        level = logging.DEBUG

    handler = _StatusAwareHandler(stream, status_line)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("stale_tokens")
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    return restore
