"""The local autograde sandbox: bubblewrap + rlimits + cgroups + a kernel zygote.

- `limits.KernelLimits`: the resource limits a sandbox enforces (from settings.grading.sandbox).
- `bwrap.sandbox_command`: the bubblewrap command line (no network, its own workspace, read-only
  view of the Python runtime only, unprivileged uid).
- `slot.SandboxSlot`: a uid and a folder that run one bubblewrap sandbox per submission (new pid
  namespace, workspace and cgroup each time), torn down and proven clean before the next one.
- `zygote.py`: runs inside, forks a fresh ipykernel per notebook.
- `kernel.SandboxKernelManager`: the jupyter_client kernel manager nbclient/nbgrader talk to.
- `cgroups`: per-submission memory and pids limits where the host allows; `uids`: slot uids unique
  on the host; `cleanup`: removal of anything a student left, without recursion;
  `isolation`: the start-up statement of what is limited per submission and per process.

How it is isolated is documented for operators in docs/operators/sandbox.md.
"""
