"""Reservations on disk: `classhub gpu reserve` writes them, the hub reads them at each spawn.

One JSON file in the state directory, written atomically under the state lock; reservations
that are over are dropped at the next write.
"""

from __future__ import annotations

import json
from datetime import datetime

from classhub.errors import ClasshubError
from classhub.gpu.allocator import Reservation
from classhub.gpu.devices import DeviceKey
from classhub.state import StateDir, write_private


def load(state: StateDir) -> list[Reservation]:
    path = state.gpu_reservations
    try:
        data = json.loads(path.read_text())
        return [
            Reservation(
                id=r["id"], course=r["course"],
                devices=tuple(DeviceKey(node, uuid) for node, uuid in r["devices"]),
                start=datetime.fromisoformat(r["start"]), end=datetime.fromisoformat(r["end"]),
                user=r.get("user"), note=r.get("note", ""),
            )
            for r in data
        ]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ClasshubError(f"{path} cannot be read: {error!r}",
                            "fix or remove the file (then reserve again)") from None


def save(state: StateDir, reservations: list[Reservation], now: datetime) -> None:
    kept = [r for r in reservations if r.end > now]
    state.hub.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(state.gpu_reservations, json.dumps([
        {"id": r.id, "course": r.course, "devices": [[d.node, d.uuid] for d in r.devices],
         "start": r.start.isoformat(), "end": r.end.isoformat(), "user": r.user,
         "note": r.note}
        for r in kept
    ], indent=2) + "\n")
