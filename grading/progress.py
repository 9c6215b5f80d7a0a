"""Done/total, failures and an estimate while a batch runs: a bar on a terminal, lines in a log."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

GOOD = {"ok", "late", "cell-timeout"}


class Progress:
    def __init__(self, total: int, stream=None):
        self.total, self.done, self.failures = total, 0, 0
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.bar = tqdm(total=total, unit="copie", file=self.stream, dynamic_ncols=True) \
            if self.stream.isatty() else None

    def update(self, result) -> None:
        self.done += 1
        if result.status not in GOOD:
            self.failures += 1
        if self.bar is not None:
            self.bar.set_postfix_str(f"échecs {self.failures}", refresh=False)
            self.bar.update(1)
            return
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done)
        print(f"[{self.done}/{self.total}] {result.student}: {result.status} "
              f"{result.score:g}/{result.max_score:g} ({result.seconds:.1f} s); "
              f"failures {self.failures}; about {left:.0f} s left", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
