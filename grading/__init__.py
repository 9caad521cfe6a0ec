"""The nbgrader-based grading service: exchange API, autograding, gradebook export, LMS sync.

This folder is the ``coursehub.grading`` package (mapped in pyproject.toml) and nothing else: imported
as a top-level ``grading`` (a process whose working directory is the checkout) it refuses, so every file
has exactly one module name.
"""

if __name__ != "coursehub.grading":
    raise ImportError(f"grading/ is the coursehub.grading package; import it as that, not as {__name__!r}")
