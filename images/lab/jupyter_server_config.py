# Server settings of every server started from the lab image.
# CLASSHUB_ROLE is set by the spawner: "student" (default) or "grader" (a course's formgrader).
# NVIDIA_VISIBLE_DEVICES is too: a GPU's UUID, or "void" for a server without a GPU.
import os

c = get_config()  # noqa: F821
grader = os.environ.get("CLASSHUB_ROLE", "student") == "grader"
gpu = os.environ.get("NVIDIA_VISIBLE_DEVICES", "void") not in ("", "void", "none")

# People work in their home; the image's own files stay out of the file browser.
c.ServerApp.root_dir = "/home/jovyan"
# Students get the assignment list and validation; only a course's grader server gets the
# formgrader (nbgrader's course list is an instructor tool too).
c.ServerApp.jpserver_extensions = {
    "classhub_formgrader_guard": grader,  # loads first: refuses the formgrader's autograde
    "nbgrader.server_extensions.formgrader": grader,
    "nbgrader.server_extensions.course_list": grader,
    "nbgrader.server_extensions.assignment_list": True,
    "nbgrader.server_extensions.validate_assignment": True,
    "classhub_course_folder": not grader,  # LISEZMOI.md and datasets in ~/<course>/
    "jupyterlab_nvdashboard": gpu,
}
if gpu:
    # The GPU dashboard's lab extension is disabled in /etc/jupyter/labconfig; this folder's
    # page_config.json, read first (JUPYTER_CONFIG_PATH comes before the system folders),
    # enables it again. JupyterLab reads page_config when it serves the page, after this file.
    os.environ["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        p for p in ("/etc/jupyter/gpu", os.environ.get("JUPYTER_CONFIG_PATH")) if p)
