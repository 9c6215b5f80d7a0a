"""JupyterHub's configuration for classhub: load the validated site, then apply it.

The site file is `$CLASSHUB_SITE` (else /etc/classhub/site.yaml, else ./site.yaml). Site-specific
escape hatch: any `jupyterhub_config.d/*.py` beside the site file is loaded last.
"""

from classhub.config import load_platform
from classhub.engine import client, ensure_student_network
from classhub.hub.config import apply_all

c = get_config()  # noqa: F821 (provided by JupyterHub)
platform = load_platform()
apply_all(c, platform, gateway=ensure_student_network(client(), platform.site))

for extra in sorted((platform.site_file.parent / "jupyterhub_config.d").glob("*.py")):
    load_subconfig(str(extra))  # noqa: F821
