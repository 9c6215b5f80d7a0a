"""What runs inside the hub process: the authenticator, the spawner, and the config appliers."""
