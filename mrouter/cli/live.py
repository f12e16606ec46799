"""A screen that refreshes a few lines in place each second (``mrouter recv --live``).

Output only, like the rest of ``mrouter/cli``. On a terminal, :class:`LiveScreen` writes
a header and one line per row once, then on each refresh moves the cursor back up over
those lines and rewrites them (ANSI/VT100 "cursor up" and "erase line"), so the picture
stays put, as mcjoin's screen does; lines are cut to the terminal's width so that none
wraps (a wrapped line would make the cursor arithmetic wrong). When the output is not a
terminal (a pipe, a file, a log), each refresh is instead printed as plain lines, each
starting with the wall-clock time, so a log reads as a time series.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

CURSOR_UP = "\x1b[{n}A"  # CUU: move the cursor up n lines
ERASE_LINE = "\x1b[2K"  # EL 2: erase the whole line


class LiveScreen:
    """Rows of text redrawn in place on a terminal, or appended as timestamped lines."""

    def __init__(self, stream: TextIO | None = None, *, terminal: bool | None = None) -> None:
        self.stream = sys.stdout if stream is None else stream
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self._drawn = 0  # lines on screen from the last refresh (terminal mode)

    def _width(self) -> int:
        """The terminal's width now (it may have been resized), from the terminal itself:
        a COLUMNS variable inherited from elsewhere may be stale."""
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            columns = shutil.get_terminal_size((120, 24)).columns
        return max(20, columns - 1)

    def refresh(self, header: str, rows: Sequence[str]) -> None:
        """Show ``header`` and ``rows`` now (replacing the previous refresh on a terminal)."""
        if not self.terminal:
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            for row in rows:
                self.stream.write(f"{stamp} {row}\n")
            self.stream.flush()
            return
        width = self._width()
        out = [CURSOR_UP.format(n=self._drawn)] if self._drawn else []
        for line in (header, *rows):
            out.append(f"\r{ERASE_LINE}{line[:width]}\n")
        self.stream.write("".join(out))
        self.stream.flush()
        self._drawn = 1 + len(rows)

    def close(self) -> None:
        """Leave the last picture on screen; what is printed next goes below it."""
        if self.terminal and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._drawn = 0
