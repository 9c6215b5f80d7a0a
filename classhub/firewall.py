"""The host's side of the student network: containers reach the hub's API and nothing else here.

An internal Docker network has no route out, but its containers still reach the host itself
through the bridge's address (and every address of the host, since the packets arrive on the
host's INPUT path): the proxy's public port, SSH, a database, anything bound to 0.0.0.0. classhub
adds one iptables chain per site, `CLASSHUB-<site>`, jumped to from INPUT for packets that come
in on the students' bridge:

    -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT   replies to the hub and the proxy
    -p tcp -d <gateway> --dport <hub.api_port> -j ACCEPT   the hub's API (servers report there)
    -p tcp -d <gateway> --dport <hub.grader_port> -j ACCEPT  the grading service (formgraders)
    -j DROP                                                 everything else, to any address

The chain is rebuilt from scratch at every `classhub up` (idempotent) and removed by
`classhub down`. It lives beside Docker's own chains and never flushes anything else. The
proxy's port is not opened: no container needs it (servers talk to the hub's API, and people's
browsers come in through the proxy from outside the student network).
"""

from __future__ import annotations

import shutil
import subprocess

from classhub.config.model import Site
from classhub.errors import ClasshubError


def chain_name(site: Site) -> str:
    return f"CLASSHUB-{site.name}"[:28]  # iptables' limit


def bridge_interface(network) -> str:
    """The Linux bridge of a Docker bridge network."""
    options = network.attrs.get("Options") or {}
    return options.get("com.docker.network.bridge.name") or f"br-{network.id[:12]}"


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    binary = shutil.which("iptables")
    if binary is None:
        raise ClasshubError("iptables is not installed: student containers could reach every "
                            "port of this host", "apt-get install iptables")
    run = subprocess.run([binary, "-w", *args], capture_output=True, text=True)
    if check and run.returncode != 0:
        raise ClasshubError(f"iptables {' '.join(args)} failed: {run.stderr.strip()}",
                            "classhub must run as root to set the host firewall")
    return run


def rules(site: Site, gateway: str) -> list[list[str]]:
    hub = site.hub
    return [
        ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        ["-p", "tcp", "-d", gateway, "--dport", str(hub.api_port), "-j", "ACCEPT"],
        ["-p", "tcp", "-d", gateway, "--dport", str(hub.grader_port), "-j", "ACCEPT"],
        ["-j", "DROP"],
    ]


def apply(site: Site, network, gateway: str) -> None:
    """Make the chain exactly `rules()` and jump to it from INPUT for the students' bridge."""
    chain, interface = chain_name(site), bridge_interface(network)
    if _iptables("-n", "-L", chain, check=False).returncode != 0:
        _iptables("-N", chain)
    _iptables("-F", chain)
    for rule in rules(site, gateway):
        _iptables("-A", chain, *rule)
    jump = ["INPUT", "-i", interface, "-j", chain]
    if _iptables("-C", *jump, check=False).returncode != 0:
        _iptables("-I", *jump[:1], "1", *jump[1:])


def remove(site: Site) -> bool:
    """Remove the chain and every jump to it; False if there was none."""
    chain = chain_name(site)
    if _iptables("-n", "-L", chain, check=False).returncode != 0:
        return False
    listing = _iptables("-S", "INPUT").stdout.splitlines()
    for line in listing:
        parts = line.split()
        if parts[:2] == ["-A", "INPUT"] and parts[-2:] == ["-j", chain]:
            _iptables("-D", "INPUT", *parts[2:])
    _iptables("-F", chain)
    _iptables("-X", chain)
    return True


def active_rules(site: Site) -> list[str]:
    """The chain as iptables lists it (for `classhub status` and the tests)."""
    run = _iptables("-S", chain_name(site), check=False)
    return run.stdout.splitlines() if run.returncode == 0 else []
