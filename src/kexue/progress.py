"""Progress of long loops through tqdm: step/total, rate, ETA and the current loss.

In a terminal it is tqdm's usual bar (on stderr). Under Snakemake a job's output goes to a
pipe that is shown in the terminal and kept as the job's log: there every refresh becomes one
clean line (no carriage-return residue), at most every ``LINE_INTERVAL_S`` seconds.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

LINE_INTERVAL_S = 10.0


class _Lines:
    """A file for tqdm that turns each refresh into one newline-terminated line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(total: int, initial: int = 0, desc: str = "", unit: str = "step") -> tqdm:
    if sys.stderr.isatty():
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=_Lines(sys.stdout),
                mininterval=LINE_INTERVAL_S, ncols=100, ascii=True)
