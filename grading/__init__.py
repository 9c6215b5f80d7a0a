"""classhub's grader: every submission executed in its own network-less sandbox, in parallel,
scored on the host by nbgrader's own preprocessors into the course's gradebook."""
