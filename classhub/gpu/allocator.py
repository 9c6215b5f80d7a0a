"""Who gets which GPU: pure logic, no engine, no NVML, no clock of its own.

A table of devices (whole GPUs and MIG slices, keyed by node and UUID), the allocations held on
them, and the reservations that set some aside for a course. Every allocation takes a share of
its device: a whole GPU or a MIG slice is 1, a seat of a GPU shared by N students is 1/N; the
shares on a device never add up to more than 1. Placement is least-loaded first, ties broken by
free memory where NVML tells it. A refusal says who holds what, and until when a reservation
keeps a device.

The hub rebuilds the table from the labels of the containers the engine runs (see `binding`),
so nothing here is ever saved: after a restart the table is what the containers say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from classhub.gpu.devices import Device, DeviceKey

WHOLE = Fraction(1)


@dataclass(frozen=True)
class Request:
    holder: str  # the user whose server gets the GPU
    course: str
    policy: str  # exclusive | shared | mig
    students_per_gpu: int | None = None

    @property
    def share(self) -> Fraction:
        return Fraction(1, self.students_per_gpu) if self.policy == "shared" else WHOLE

    @property
    def wants_slice(self) -> bool:
        return self.policy == "mig"


@dataclass(frozen=True)
class Allocation:
    holder: str
    course: str
    device: DeviceKey
    share: Fraction
    policy: str


@dataclass(frozen=True)
class Reservation:
    """Devices set aside for a course (or one of its people) from `start` to `end`."""

    id: str
    course: str
    devices: tuple[DeviceKey, ...]
    start: datetime
    end: datetime
    user: str | None = None
    note: str = ""

    def active(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end

    def admits(self, request: Request) -> bool:
        return request.course == self.course and self.user in (None, request.holder)


@dataclass(eq=False)
class NoGpu(Exception):
    """No device can take the request now."""

    request: Request
    devices_of_kind: int
    holders: list[Allocation] = field(default_factory=list)
    reservations: list[Reservation] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message()

    def message(self) -> str:
        """What the student reads on the spawn page, in French."""
        kind, none, one = (("tranche MIG", "aucune", "une") if self.request.wants_slice
                           else ("GPU", "aucun", "un"))
        course = self.request.course
        if not self.devices_of_kind:
            return (f"Ce poste n'a {none} {kind} à attribuer, alors que le cours « {course} » "
                    f"en demande {one}. Le TP ne peut pas tourner sans : prévenez votre "
                    f"enseignant ou l'équipe informatique.")
        parts = [(f"{none.capitalize()} {kind} libre pour le cours « {course} » "
                  f"({self.devices_of_kind} sur ce poste).")]
        if self.holders:
            held = ", ".join(f"{a.holder} (cours {a.course}, {a.device.uuid}"
                             f"{'' if a.share == WHOLE else f', part {a.share}'})"
                             for a in sorted(self.holders, key=lambda a: (a.device, a.holder)))
            parts.append(f"Utilisés par : {held}.")
        for r in sorted(self.reservations, key=lambda r: r.end):
            who = f"{r.user} ({r.course})" if r.user else f"le cours {r.course}"
            parts.append(f"Réservés pour {who} jusqu'au {_when(r.end)} : "
                         f"{', '.join(d.uuid for d in r.devices)}.")
        parts.append("Que faire : arrêtez un serveur que vous n'utilisez plus (dans JupyterLab, "
                     "menu Fichier > Panneau de contrôle du Hub), réessayez dans quelques minutes"
                     + (" ou après la fin de la réservation" if self.reservations else "")
                     + ", ou demandez à votre enseignant.")
        return " ".join(parts)


class ReservationRefused(ValueError):
    pass


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%d/%m/%Y à %H:%M")


class GpuTable:
    def __init__(self, devices: list[Device], allocations=(), reservations=()):
        self.devices: dict[DeviceKey, Device] = {d.key: d for d in devices}
        self.allocations: dict[str, Allocation] = {}
        for allocation in allocations:
            self._hold(allocation)
        self.reservations: list[Reservation] = list(reservations)

    def _hold(self, allocation: Allocation) -> None:
        if allocation.holder in self.allocations:
            raise ValueError(f"{allocation.holder} already holds "
                             f"{self.allocations[allocation.holder].device}")
        self.allocations[allocation.holder] = allocation

    # what the table says

    def holders(self, key: DeviceKey) -> list[Allocation]:
        return [a for a in self.allocations.values() if a.device == key]

    def load(self, key: DeviceKey) -> Fraction:
        return sum((a.share for a in self.holders(key)), Fraction(0))

    def of_kind(self, request: Request) -> list[Device]:
        return [d for d in self.devices.values() if d.is_mig == request.wants_slice]

    def reserved_against(self, key: DeviceKey, request: Request, now: datetime):
        """The active reservation that keeps `key` from this request, if any."""
        for r in self.reservations:
            if key in r.devices and r.active(now) and not r.admits(request):
                return r
        return None

    def fits(self, device: Device, request: Request, now: datetime) -> bool:
        return (device.is_mig == request.wants_slice
                and self.reserved_against(device.key, request, now) is None
                and self.load(device.key) + request.share <= WHOLE)

    # changes

    def allocate(self, request: Request, now: datetime,
                 free_mib: dict[str, int] | None = None) -> Allocation:
        if request.policy not in ("exclusive", "shared", "mig"):
            raise ValueError(f"policy {request.policy!r} gets no GPU")
        if request.holder in self.allocations:
            raise ValueError(f"{request.holder} already holds "
                             f"{self.allocations[request.holder].device}")
        candidates = [d for d in self.devices.values() if self.fits(d, request, now)]
        if not candidates:
            raise self._refusal(request, now)
        mine = {key for r in self.reservations if r.active(now) and r.admits(request)
                for key in r.devices}
        free_mib = free_mib or {}

        def preference(device: Device):
            # Reserved for this course first (keeps the others free), then least loaded, then
            # the most free memory, then a stable order.
            return (device.key not in mine, self.load(device.key),
                    -free_mib.get(device.uuid, 0), device.key)

        chosen = min(candidates, key=preference)
        allocation = Allocation(request.holder, request.course, chosen.key, request.share,
                                request.policy)
        self._hold(allocation)
        return allocation

    def release(self, holder: str) -> Allocation | None:
        return self.allocations.pop(holder, None)

    def _refusal(self, request: Request, now: datetime) -> NoGpu:
        kind = self.of_kind(request)
        keys = {d.key for d in kind}
        blocking = [r for r in self.reservations
                    if r.active(now) and not r.admits(request) and keys & set(r.devices)]
        holders = [a for a in self.allocations.values() if a.device in keys]
        return NoGpu(request, len(kind), holders, blocking)

    def reserve(self, reservation_id: str, course: str, policy: str, count: int,
                start: datetime, end: datetime, now: datetime, user: str | None = None,
                note: str = "") -> Reservation:
        """Set `count` devices of the kind the policy uses aside for a course. Devices another
        reservation holds in an overlapping window are never taken; free ones are taken first.
        """
        if count < 1:
            raise ReservationRefused("reserve at least one GPU")
        if not start < end:
            raise ReservationRefused("the reservation ends before it starts")
        if end <= now:
            raise ReservationRefused("the reservation would already be over")
        probe = Request(user or "", course, policy, 2 if policy == "shared" else None)
        free = [d for d in self.of_kind(probe)
                if not any(r.overlaps(start, end) and d.key in r.devices
                           for r in self.reservations)]
        if len(free) < count:
            raise ReservationRefused(
                f"only {len(free)} {'MIG slice' if probe.wants_slice else 'GPU'}(s) can be "
                f"reserved from {start.isoformat()} to {end.isoformat()}; asked for {count}")
        free.sort(key=lambda d: (self.load(d.key), d.key))
        reservation = Reservation(reservation_id, course, tuple(d.key for d in free[:count]),
                                  start, end, user, note)
        self.reservations.append(reservation)
        return reservation
