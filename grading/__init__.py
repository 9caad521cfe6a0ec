"""The nbgrader-based grading service: exchange API, autograding, gradebook export, LMS sync."""
