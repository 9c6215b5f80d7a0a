"""The GPU allocator's promises, for any sequence of spawns, stops, failed spawns, hub restarts,
reservations and the passing of time (hypothesis draws the sequences):

- a device never carries more than one GPU's worth of shares; a whole GPU or a MIG slice has at
  most one holder; a MIG slice only goes to a `mig` course, a whole GPU never does;
- a spawn is refused only when no device could take it, and then the refusal says why;
- nothing leaks: the table rebuilt from the containers' labels (what a restarted hub does) is the
  table the hub kept, and once every server stops every device is free;
- a device reserved for a course is not given to another course during the reservation, and two
  reservations never hold one device at the same time.
"""

from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from classhub.gpu import binding
from classhub.gpu.allocator import GpuTable, NoGpu, Request, ReservationRefused
from classhub.gpu.devices import Device, DeviceKey
from classhub.gpu.pool import GpuPool, held

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
COURSES = {  # course -> (policy, students per GPU)
    "m2": ("exclusive", None),
    "du": ("shared", 2),
    "atelier": ("shared", 3),
    "mig": ("mig", None),
}
USERS = [f"etu{i}" for i in range(8)]


def inventory(whole: int, mig: list[int], node: str = "ws1") -> list[Device]:
    devices = [Device(node, f"GPU-{i:04d}", "H200", 143771) for i in range(whole)]
    for g, slices in enumerate(mig):
        devices += [Device(node, f"MIG-{g}-{s}", "1g.18gb", 16384, parent=f"GPU-m{g}")
                    for s in range(slices)]
    return devices


def request(user: str, course: str) -> Request:
    policy, n = COURSES[course]
    return Request(user, course, policy, n)


class AllocatorMachine(RuleBasedStateMachine):
    @initialize(whole=st.integers(0, 3), mig=st.lists(st.integers(1, 3), max_size=2))
    def setup(self, whole, mig):
        self.devices = inventory(whole, mig)
        self.table = GpuTable(self.devices)  # what the hub keeps between restarts
        self.containers: dict[str, dict[str, str]] = {}  # the engine: holder -> labels
        self.now = T0
        self.next_id = 0

    def rebuilt(self) -> GpuTable:
        """What a hub that just started builds: labels of the containers, reservations."""
        allocations = [binding.from_labels(labels) for labels in self.containers.values()]
        return GpuTable(self.devices, allocations, self.table.reservations)

    def could_fit(self, req: Request) -> bool:
        for device in self.devices:
            if device.is_mig != req.wants_slice:
                continue
            if any(r.active(self.now) and device.key in r.devices and not r.admits(req)
                   for r in self.table.reservations):
                continue
            if self.table.load(device.key) + req.share <= 1:
                return True
        return False

    @rule(user=st.sampled_from(USERS), course=st.sampled_from(sorted(COURSES)),
          container_created=st.booleans())
    def spawn(self, user, course, container_created):
        if user in self.containers:  # a new spawn replaces the user's server
            self.stop(user)
        req = request(user, course)
        fits = self.could_fit(req)
        try:
            allocation = self.table.allocate(req, self.now)
        except NoGpu as refusal:
            assert not fits, "refused although a device could take it"
            assert course in refusal.message()
            if refusal.devices_of_kind:
                assert refusal.holders or refusal.reservations, "a refusal names no cause"
            return
        assert fits
        device = self.table.devices[allocation.device]
        assert device.is_mig == req.wants_slice
        for r in self.table.reservations:  # never a device another course has reserved now
            if r.start <= self.now < r.end and device.key in r.devices:
                assert r.course == course and r.user in (None, user)
        if container_created:
            self.containers[user] = binding.labels(allocation)
        else:  # the spawn failed before its container existed: the spawner lets it go
            assert self.table.release(user) == allocation

    @rule(user=st.sampled_from(USERS))
    def stop(self, user):
        released = self.table.release(user)
        assert (released is None) == (user not in self.containers)
        self.containers.pop(user, None)

    @rule()
    def restart_hub(self):
        self.table = self.rebuilt()

    @rule(course=st.sampled_from(sorted(COURSES)), count=st.integers(1, 3),
          starts_in_h=st.integers(-2, 6), hours=st.integers(1, 4),
          for_user=st.sampled_from([None, *USERS[:2]]))
    def reserve(self, course, count, starts_in_h, hours, for_user):
        start = self.now + timedelta(hours=starts_in_h)
        end = start + timedelta(hours=hours)
        self.next_id += 1
        policy = COURSES[course][0]
        try:
            reservation = self.table.reserve(f"r{self.next_id}", course, policy, count, start,
                                             end, self.now, user=for_user)
        except ReservationRefused:
            return
        assert len(reservation.devices) == count
        assert all(self.table.devices[k].is_mig == (policy == "mig")
                   for k in reservation.devices)

    @precondition(lambda self: self.table.reservations)
    @rule(data=st.data())
    def cancel(self, data):
        self.table.reservations.remove(data.draw(st.sampled_from(self.table.reservations)))

    @rule(hours=st.integers(1, 3))
    def time_passes(self, hours):
        self.now += timedelta(hours=hours)

    @invariant()
    def no_device_is_over_subscribed(self):
        for key, device in self.table.devices.items():
            holders = self.table.holders(key)
            assert self.table.load(key) <= 1
            if any(a.share == 1 for a in holders) or device.is_mig:
                assert len(holders) <= 1
            for a in holders:
                assert (a.policy == "mig") == device.is_mig
                if a.policy == "shared":
                    same_course = [h for h in holders if h.course == a.course]
                    assert len(same_course) <= COURSES[a.course][1]

    @invariant()
    def the_engine_and_the_table_agree(self):
        assert self.rebuilt().allocations == self.table.allocations
        assert set(self.table.allocations) == set(self.containers)

    @invariant()
    def reservations_never_overlap_on_a_device(self):
        reservations = self.table.reservations
        for i, a in enumerate(reservations):
            for b in reservations[i + 1:]:
                if a.overlaps(b.start, b.end):
                    assert not set(a.devices) & set(b.devices)

    def teardown(self):
        if not hasattr(self, "table"):
            return
        for user in list(self.containers):
            self.stop(user)
        assert all(self.table.load(key) == 0 for key in self.table.devices)
        assert not self.rebuilt().allocations


AllocatorMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestAllocator = AllocatorMachine.TestCase


def test_least_loaded_gpu_first_then_most_free_memory():
    devices = inventory(3, [])
    table = GpuTable(devices)
    first = table.allocate(request("a", "du"), T0, free_mib={"GPU-0001": 9000})
    assert first.device.uuid == "GPU-0001"  # all empty: the most free memory wins
    second = table.allocate(request("b", "du"), T0, free_mib={"GPU-0001": 9000})
    assert second.device.uuid != "GPU-0001"  # least loaded before free memory
    assert first.share == Fraction(1, 2)


def test_a_refusal_names_the_holders_and_the_end_of_the_reservation():
    table = GpuTable(inventory(2, []))
    table.allocate(request("alice", "m2"), T0)
    table.reserve("r1", "du", "shared", 1, T0, T0 + timedelta(hours=2), T0)
    with pytest.raises(NoGpu) as refused:
        table.allocate(request("bob", "m2"), T0)
    message = refused.value.message()
    assert "alice (cours m2, GPU-0000)" in message
    assert "Réservés pour le cours du jusqu'au" in message and "GPU-0001" in message
    assert "Que faire" in message
    # once the reservation is over, the reserved GPU goes to whoever asks
    assert table.allocate(request("bob", "m2"), T0 + timedelta(hours=2)).device.uuid == "GPU-0001"


def test_a_node_without_gpus_says_so():
    with pytest.raises(NoGpu) as refused:
        GpuTable(inventory(1, [])).allocate(request("alice", "mig"), T0)
    assert refused.value.devices_of_kind == 0
    assert refused.value.message().startswith("Ce poste n'a aucune tranche MIG à attribuer")


def test_a_reservation_for_one_instructor_admits_only_them():
    table = GpuTable(inventory(1, []))
    table.reserve("r1", "m2", "exclusive", 1, T0, T0 + timedelta(hours=1), T0, user="prof")
    with pytest.raises(NoGpu):
        table.allocate(request("etu0", "m2"), T0)
    assert table.allocate(request("prof", "m2"), T0).device.uuid == "GPU-0000"


def test_labels_round_trip_and_ignore_other_containers():
    table = GpuTable(inventory(1, []))
    allocation = table.allocate(request("alice", "atelier"), T0)
    labels = binding.labels(allocation)
    assert binding.from_labels(labels) == allocation
    assert binding.from_labels({"org.classhub.user": "bob"}) is None
    env = binding.environment(allocation)
    assert env["NVIDIA_VISIBLE_DEVICES"] == "GPU-0000"
    assert env[binding.MEMORY_FRACTION_ENV] == "0.3167"  # 95% of a third: room for contexts
    assert binding.environment(None) == {"NVIDIA_VISIBLE_DEVICES": "void"}
    assert binding.host_config(allocation, "nvidia") == {"runtime": "nvidia"}


def test_the_pool_holds_a_spawn_in_progress_until_its_container_exists(tmp_path):
    from classhub.gpu.inventory import Inventory
    from classhub.state import StateDir

    engine: list[dict] = []  # the containers the engine lists
    pool = GpuPool(Inventory(inventory(1, []), "config", None), StateDir(tmp_path),
                   lambda: list(engine))
    first = pool.acquire(request("alice", "m2"), T0)
    with pytest.raises(NoGpu):  # alice's container does not exist yet: her GPU is still hers
        pool.acquire(request("bob", "m2"), T0)
    engine.append({"State": "running", "Labels": binding.labels(first)})
    pool.settle("alice")
    with pytest.raises(NoGpu):
        pool.acquire(request("bob", "m2"), T0)
    # alice spawning again replaces her own container: she is not refused by herself
    assert pool.acquire(request("alice", "m2"), T0).device == first.device
    pool.settle("alice")
    engine[0]["State"] = "exited"  # her server stopped (or crashed): the GPU is free
    assert held(engine) == []
    assert pool.acquire(request("bob", "m2"), T0).device == DeviceKey("ws1", "GPU-0000")


def test_a_spawn_whose_container_exists_before_it_settles_counts_once(tmp_path):
    """A whole class arriving: ana's container is listed while her spawn is still pending."""
    from classhub.gpu.inventory import Inventory
    from classhub.state import StateDir

    engine: list[dict] = []
    pool = GpuPool(Inventory(inventory(2, []), "config", None), StateDir(tmp_path),
                   lambda: list(engine))
    ana = pool.acquire(request("ana", "du"), T0)
    engine.append({"State": "created", "Labels": binding.labels(ana)})
    ben = pool.acquire(request("ben", "du"), T0)  # ana not settled yet: still one holder
    assert ben.device != ana.device  # least loaded: the other GPU
    engine.append({"State": "running", "Labels": binding.labels(ben)})
    assert pool.acquire(request("cyril", "du"), T0).share == Fraction(1, 2)
    assert sorted(pool.table().allocations) == ["ana", "ben", "cyril"]


def test_labels_from_before_a_node_rename_still_hold_their_gpu(tmp_path):
    from classhub.gpu.inventory import Inventory
    from classhub.state import StateDir

    old = GpuTable(inventory(1, [], node="old-name")).allocate(request("ana", "m2"), T0)
    engine = [{"State": "running", "Labels": binding.labels(old)}]
    pool = GpuPool(Inventory(inventory(1, [], node="ws1"), "config", None), StateDir(tmp_path),
                   lambda: engine)
    assert pool.table().load(DeviceKey("ws1", "GPU-0000")) == 1
    with pytest.raises(NoGpu):
        pool.acquire(request("ben", "m2"), T0)


def test_a_damaged_reservations_file_is_named(tmp_path):
    from classhub.errors import ClasshubError
    from classhub.gpu import reservations
    from classhub.state import StateDir

    state = StateDir(tmp_path)
    state.hub.mkdir()
    state.gpu_reservations.write_text("[{\"id\": ")
    with pytest.raises(ClasshubError, match="gpu-reservations.json cannot be read"):
        reservations.load(state)


def test_an_inventory_read_again_keeps_the_spawns_in_progress(tmp_path):
    """After a fallback to the config, the hub reads the GPUs again at the next spawn; a spawn
    still in progress must keep its GPU through that."""
    from classhub.gpu.inventory import Inventory
    from classhub.state import StateDir

    fallback = Inventory(inventory(1, []), "config", None, note="NVML cannot start")
    assert not fallback.settled
    pool = GpuPool(fallback, StateDir(tmp_path), list)
    pool.acquire(request("ana", "m2"), T0)
    pool.use_inventory(Inventory(inventory(1, []), "nvml", None))
    assert pool.inventory.settled
    with pytest.raises(NoGpu):
        pool.acquire(request("ben", "m2"), T0)
