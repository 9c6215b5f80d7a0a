"""The nvidia role's MIG script (`ansible/roles/nvidia/templates/classhub-mig.j2`), rendered as
Ansible renders it and run against a stand-in `nvidia-smi` that keeps each GPU's MIG mode and
instances in files: no GPU here, the stand-in is the only mock (it says so below)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import jinja2

ROLE = Path(__file__).resolve().parents[2] / "ansible" / "roles" / "nvidia"

# Stand-in for nvidia-smi (no GPU on this machine): the commands the script uses, with the
# messages the real tool prints; `pending-<gpu>` makes a mode change wait for a reset.
STAND_IN = r"""#!/bin/bash
echo "$*" >> "$STATE/calls"
if [ "$1" = mig ]; then
  gpu=$3
  case "$4" in
    -lgi) if [ -s "$STATE/instances-$gpu" ]; then cat "$STATE/instances-$gpu";
          else echo "No GPU instances found: Not Found" >&2; exit 6; fi ;;
    -cgi) echo "$5" > "$STATE/instances-$gpu" ;;
    *) exit 2 ;;
  esac
  exit 0
fi
gpu=$2
case "$3" in
  --query-gpu=mig.mode.current) cat "$STATE/mode-$gpu" 2>/dev/null || echo "Disabled" ;;
  -mig) [ -e "$STATE/pending-$gpu" ] || echo "Enabled" > "$STATE/mode-$gpu" ;;
  *) exit 2 ;;
esac
"""


def _script(tmp_path: Path, layout: dict[str, str]) -> tuple[Path, dict[str, str]]:
    template = (ROLE / "templates" / "classhub-mig.j2").read_text()
    script = tmp_path / "classhub-mig"
    script.write_text(jinja2.Template(template, trim_blocks=True).render(
        ansible_managed="Ansible managed", nvidia_mig_layout=layout))
    script.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(STAND_IN)
    (bin_dir / "nvidia-smi").chmod(0o755)
    state = tmp_path / "gpus"
    state.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STATE": str(state)}
    return script, env


def _run(script, env):
    return subprocess.run([str(script)], env=env, capture_output=True, text=True, check=False)


def test_lays_out_each_gpu_once_and_then_changes_nothing(tmp_path):
    script, env = _script(tmp_path, {"0": "1g.18gb,1g.18gb", "1": "3g.71gb"})
    first = _run(script, env)
    assert first.returncode == 0, first.stderr
    assert sorted(first.stdout.splitlines()) == [
        "GPU 0: MIG mode enabled", "GPU 0: instances created: 1g.18gb,1g.18gb",
        "GPU 1: MIG mode enabled", "GPU 1: instances created: 3g.71gb"]
    state = Path(env["STATE"])
    assert (state / "instances-0").read_text().strip() == "1g.18gb,1g.18gb"
    again = _run(script, env)
    assert (again.returncode, again.stdout) == (0, "")  # Ansible: changed=0


def test_an_existing_layout_is_never_destroyed(tmp_path):
    script, env = _script(tmp_path, {"0": "1g.18gb"})
    state = Path(env["STATE"])
    (state / "mode-0").write_text("Enabled\n")
    (state / "instances-0").write_text("7g.141gb\n")  # someone else's layout
    result = _run(script, env)
    assert (result.returncode, result.stdout) == (0, "")
    assert (state / "instances-0").read_text() == "7g.141gb\n"
    assert not any(" -dgi" in c or " -dci" in c for c in (state / "calls").read_text().splitlines())


def test_a_mode_change_waiting_for_a_reset_stops_with_a_reason(tmp_path):
    script, env = _script(tmp_path, {"0": "1g.18gb"})
    (Path(env["STATE"]) / "pending-0").touch()
    result = _run(script, env)
    assert result.returncode == 1
    assert "MIG mode is pending" in result.stderr
    assert not (Path(env["STATE"]) / "instances-0").exists()
