"""The local autograde sandbox: bubblewrap + rlimits + a kernel zygote.

- `limits.Limits`: the resource limits a sandbox enforces (from settings.grading.sandbox).
- `bwrap.sandbox_command`: the bubblewrap command line (no network, throwaway workspace, read-only
  view of the Python runtime only, unprivileged uid).
- `slot.SandboxSlot`: one long-lived sandbox running `zygote.py`, which forks a fresh ipykernel per
  notebook. A slot serves one notebook at a time; parallel workers use one slot each.
- `kernel.SandboxKernelManager`: the jupyter_client kernel manager nbclient/nbgrader talk to.

How it is isolated is documented for operators in docs/operators/sandbox.md.
"""
