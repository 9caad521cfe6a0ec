"""Autograding at deadline scale, in a sandbox, with nbgrader's own scores.

Pipeline of small steps (one module each):
  course.NbgraderCourse read an nbgrader course directory (same layout as `nbgrader autograde`)
  sources.SourceIndex the assignment's source cells, loaded once from the gradebook
  steps.sanitize      nbgrader's sanitize preprocessors (restore locked/test cells from the source)
  execute.run_notebook nbgrader's Execute against a fresh sandboxed kernel (grading/sandbox)
  steps.finish        nbgrader's output-cleaning preprocessors, outside the sandbox
  gradebook.GradebookWriter  nbgrader's SaveAutoGrades/AssignLatePenalties into the course gradebook
  grader.Grader       one worker: prepare -> execute -> finish, returns data only
  pool.GraderPool     parallel workers for the CLI (`coursehub autograde`)
  executors           the executor interface (local sandbox | Kubernetes Job) chosen by settings
  k8s_executor        the Kubernetes Job / NetworkPolicy objects for one submission
The durable job queue that the grading service uses is `coursehub.grading.queue`.
"""
