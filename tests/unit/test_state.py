"""The state directory's generated secrets: made once, even by processes starting together."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from classhub.state import StateDir


def _read_secret(root: str, barrier, out) -> None:
    barrier.wait()
    out.put(StateDir(Path(root)).secret("proxy_token"))


def test_processes_making_a_secret_together_all_get_the_same_one(tmp_path):
    state = StateDir(tmp_path / "state").ensure()
    context = multiprocessing.get_context("fork")
    barrier, out = context.Barrier(8), context.Queue()
    workers = [context.Process(target=_read_secret, args=(str(state.root), barrier, out))
               for _ in range(8)]
    for worker in workers:
        worker.start()
    values = {out.get(timeout=30) for _ in workers}
    for worker in workers:
        worker.join(timeout=30)
    assert len(values) == 1
    assert (state.secrets / "proxy_token").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in state.secrets.iterdir()) == ["proxy_token"]  # no tmp left
