"""What a kernel forked from the zygote still has to do itself: the zygote's point is that a
kernel's start costs no imports and no look-ups the zygote could have done once per sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from coursehub.grading.sandbox import zygote

# The zygote's imports (run_path: the module without its main loop) and what its main() does
# before the first fork (the interface look-up), then a fork that starts an
# ordinary IPKernelApp the way run_kernel does, reporting what the kernel's start imported and
# whether it went looking for the machine's network interfaces.
PROBE = textwrap.dedent("""
    import json, os, runpy, sys, tempfile
    runpy.run_path(sys.argv[1], run_name="zygote")["find_local_interfaces"]()
    from jupyter_client import localinterfaces
    from jupyter_client.connect import write_connection_file
    folder = tempfile.mkdtemp()
    connection_file, _ = write_connection_file(os.path.join(folder, "kernel.json"), ip="127.0.0.1")
    looked = []
    original = localinterfaces._load_ips_psutil
    def counted(*args, **kwargs):
        looked.append(1)
        return original(*args, **kwargs)
    localinterfaces._load_ips_psutil = counted
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.environ["IPYTHONDIR"] = os.path.join(folder, "ipython")
        import ipykernel.kernelapp
        before = set(sys.modules)
        app = ipykernel.kernelapp.IPKernelApp.instance()
        app.initialize(["-f", connection_file, "--HistoryManager.hist_file=:memory:"])
        report = {"imported": sorted(set(sys.modules) - before), "looked_up_interfaces": len(looked)}
        os.write(write, json.dumps(report).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 65536):
        data += chunk
    os.waitpid(pid, 0)
    print("REPORT " + data.decode())
""")


def _kernel_start_report(zygote_file: str = zygote.__file__) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, zygote_file], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("REPORT "))
    return json.loads(line.removeprefix("REPORT "))


def test_a_forked_kernel_imports_nothing_and_looks_up_no_interfaces_at_start():
    report = _kernel_start_report()
    # e.g. psutil (jupyter_client's interface look-up) or zipfile: each would cost every kernel
    assert report["imported"] == [], report["imported"]
    # jupyter_client finds the machine's interfaces even when the connection file names the ip;
    # the zygote found them once, inside the sandbox's network namespace, before forking
    assert report["looked_up_interfaces"] == 0


def test_the_probe_sees_a_kernel_start_that_does_its_own_work(tmp_path):
    """The same probe on a zygote without the pre-loading reports the imports and the look-up: the
    test above can fail."""
    source = Path(zygote.__file__).read_text()
    lean = source.replace("        localinterfaces.localhost()\n", "        pass\n").replace('"psutil"', '"os"')
    assert lean.count("pass\n") > source.count("pass\n") and '"psutil"' not in lean
    copy = tmp_path / "zygote.py"
    copy.write_text(lean)
    report = _kernel_start_report(str(copy))
    assert "psutil" in report["imported"]
    assert report["looked_up_interfaces"] == 1
