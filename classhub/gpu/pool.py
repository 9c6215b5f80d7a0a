"""The GPU table as the engine tells it: who holds what is read from the containers' labels at
each request, so a restarted hub, a stopped server or a removed container can never leave the
table out of step. The only memory kept here is the allocations handed out whose container
does not exist yet (a spawn in progress).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from classhub.gpu import binding, reservations
from classhub.gpu.allocator import Allocation, GpuTable, Request
from classhub.gpu.inventory import Inventory
from classhub.state import StateDir

GONE = {"exited", "dead", "removing"}


def holding(containers: list[dict]) -> list[tuple[dict, Allocation]]:
    """Each container that still runs (or is being created) with the allocation its labels
    record. `containers` is the engine's listing (the Docker API's `Labels` and `State`)."""
    found = []
    for container in containers:
        allocation = binding.from_labels(container.get("Labels") or {})
        if allocation is not None and container.get("State") not in GONE:
            found.append((container, allocation))
    return found


def held(containers: list[dict]) -> list[Allocation]:
    return [allocation for _, allocation in holding(containers)]


class GpuPool:
    def __init__(self, inventory: Inventory, state: StateDir,
                 list_containers: Callable[[], list[dict]]):
        self.state = state
        self.list_containers = list_containers
        self._pending: dict[str, Allocation] = {}
        self._lock = threading.Lock()
        self.use_inventory(inventory)

    def use_inventory(self, inventory: Inventory) -> None:
        """The node's GPUs, read again (spawns in progress are kept)."""
        with self._lock:
            self.inventory = inventory
            self._keys_by_uuid = {d.uuid: d.key for d in inventory.devices}

    def table(self, replacing: str | None = None) -> GpuTable:
        """The table now; `replacing`'s own containers are left out (a new spawn replaces them).

        A spawn in progress counts once: from its pending allocation until its container
        shows up, from the container's labels afterwards (which win)."""
        by_holder = {h: a for h, a in self._pending.items() if h != replacing}
        by_holder.update({a.holder: self._on_this_node(a) for a in held(self.list_containers())
                          if a.holder != replacing})
        return GpuTable(self.inventory.devices, list(by_holder.values()),
                        reservations.load(self.state))

    def _on_this_node(self, allocation: Allocation) -> Allocation:
        """Labels written before the node was renamed (`gpu.node`, the host name) still hold
        the GPU with that UUID: every container listed here runs on this node's engine."""
        key = self._keys_by_uuid.get(allocation.device.uuid)
        return replace(allocation, device=key) if key else allocation

    def free_mib(self) -> dict[str, int]:
        used = self.inventory.memory_used_mib()
        return {d.uuid: d.memory_mib - used[d.uuid]
                for d in self.inventory.devices if d.memory_mib and d.uuid in used}

    def acquire(self, request: Request, now: datetime) -> Allocation:
        """An allocation for `request`, held until its container exists (see `settle`).
        Raises NoGpu with the reason when nothing fits."""
        with self._lock:
            allocation = self.table(replacing=request.holder).allocate(
                request, now, self.free_mib())
            self._pending[request.holder] = allocation
            return allocation

    def settle(self, holder: str) -> None:
        """The spawn is over: its container carries the allocation now, or it failed."""
        with self._lock:
            self._pending.pop(holder, None)
