"""The nbgrader assignment lifecycle of a course: release, collect, autograde, feedback, export."""
