# Server settings of every server started from the lab image.
# CLASSHUB_ROLE is set by the spawner: "student" (default) or "grader" (a course's formgrader).
import os

c = get_config()  # noqa: F821
grader = os.environ.get("CLASSHUB_ROLE", "student") == "grader"

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
}
