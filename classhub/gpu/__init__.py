"""GPUs: the node's inventory (NVML), the allocator (pure logic), the binding a container gets,
reservations, and the GPU-idle culler. The allocator is what decides; the spawner only wires it in.
"""
