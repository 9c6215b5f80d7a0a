"""What an admin or instructor does with the node's GPUs from the command line: see every GPU
with its holders, memory and reservations; reserve GPUs for a course; cancel a reservation.
The table is built the way the hub builds it (inventory, container labels, reservations file).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone

from classhub import engine as engines
from classhub.config.model import Platform
from classhub.errors import ClasshubError
from classhub.gpu import inventory, reservations
from classhub.gpu.allocator import GpuTable, Reservation, ReservationRefused
from classhub.gpu.pool import GpuPool
from classhub.state import StateDir

RELATIVE = re.compile(r"^\+(\d+)([mhd])$")


def when(text: str, now: datetime) -> datetime:
    """`+90m`, `+2h`, `+1d`, or an ISO date-time (local time when it names no zone)."""
    match = RELATIVE.match(text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now + timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ClasshubError(f"{text!r} is not a time",
                            "write +2h, +90m, +1d or 2026-12-01T14:00") from None
    return moment.astimezone() if moment.tzinfo is None else moment


def _containers(platform: Platform) -> list[dict]:
    return engines.student_container_records(engines.client(), platform.site)


def table(platform: Platform) -> tuple[GpuTable, inventory.Inventory]:
    """The table as the hub builds it (GpuPool), from this process."""
    found = inventory.read(platform.site.gpu)
    pool = GpuPool(found, StateDir(platform.site.state_dir), lambda: _containers(platform))
    return pool.table(), found


def report(platform: Platform) -> dict:
    """Every GPU (and MIG slice): its holders, memory in use, reservations to come."""
    gpus, found = table(platform)
    used = found.memory_used_mib()
    now = datetime.now(timezone.utc)
    devices = []
    for device in sorted(gpus.devices.values(), key=lambda d: d.key):
        devices.append({
            "node": device.node, "uuid": device.uuid, "name": device.name,
            "mig_of": device.parent, "memory_mib": device.memory_mib,
            "memory_used_mib": used.get(device.uuid),
            "load": str(gpus.load(device.key)),
            "holders": [{"user": a.holder, "course": a.course, "share": str(a.share)}
                        for a in sorted(gpus.holders(device.key), key=lambda a: a.holder)],
            "reservations": [_reservation(r, now) for r in gpus.reservations
                             if device.key in r.devices and r.end > now],
        })
    return {"inventory": found.source, "note": found.note, "devices": devices}


def _reservation(r: Reservation, now: datetime) -> dict:
    return {"id": r.id, "course": r.course, "user": r.user, "note": r.note,
            "start": r.start.isoformat(), "end": r.end.isoformat(), "active": r.active(now)}


def reserve(platform: Platform, course: str, count: int, start: datetime, end: datetime,
            user: str | None = None, note: str = "") -> Reservation:
    if course not in platform.courses:
        raise ClasshubError(f"no course {course!r}",
                            f"courses: {', '.join(sorted(platform.courses))}")
    policy = platform.profile(course).gpu_policy
    if policy == "none":
        raise ClasshubError(f"course {course} uses no GPU (gpu.policy: none)",
                            "set its gpu policy in course.yml first")
    state = StateDir(platform.site.state_dir)
    now = datetime.now(timezone.utc)
    with state.lock():
        gpus, _ = table(platform)
        taken = {r.id for r in gpus.reservations}
        reservation_id = f"r-{secrets.token_hex(3)}"
        while reservation_id in taken:
            reservation_id = f"r-{secrets.token_hex(3)}"
        try:
            made = gpus.reserve(reservation_id, course, policy, count, start, end, now,
                                user=user, note=note)
        except ReservationRefused as error:
            raise ClasshubError(str(error), "see `classhub gpu list`") from None
        reservations.save(state, gpus.reservations, now)
    return made


def cancel(platform: Platform, reservation_id: str) -> Reservation:
    state = StateDir(platform.site.state_dir)
    now = datetime.now(timezone.utc)
    with state.lock():
        kept = reservations.load(state)
        gone = [r for r in kept if r.id == reservation_id]
        if not gone:
            raise ClasshubError(f"no reservation {reservation_id!r}", "see `classhub gpu list`")
        reservations.save(state, [r for r in kept if r.id != reservation_id], now)
    return gone[0]
