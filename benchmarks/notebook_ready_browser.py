"""Benchmark: an LMS launch until JupyterLab, in a real browser, has the assignment notebook open
with its kernel connected and idle; the hub's kernel pre-start on and off, interleaved.

    .venv/bin/python benchmarks/notebook_ready_browser.py              # 3 rounds of on / off
    .venv/bin/python benchmarks/notebook_ready_browser.py --rounds 5
    .venv/bin/python benchmarks/notebook_ready_browser.py --warm       # a browser that has seen Lab

`benchmarks/lecture_start.py` measures with a headless HTTP client, which asks for the kernel as soon
as Lab's page arrives; a browser first loads and starts Lab's JavaScript, and the pre-start
(`spawner.prestart_kernel`) runs the kernel's start during that time. Here headless chromium
(Debian's, driven by Playwright) follows the launch like a student: the spawn page, the assignment
fetch, Lab. Each round starts a fresh local platform per setting and one new student. Printed per
setting, min and median over the rounds: launch → Lab's URL (server start and fetch), Lab's URL →
kernel ready (Lab's JavaScript and the kernel), and the whole; with the load average. With
`--warm`, another student first opens the assignment in the same browser (so Lab's files are in its
cache, as for a student who used coursehub before) and the second student is measured.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

import requests
from loadtest_support import load, local_platform, min_median
from support.browser import CHROMIUM, CHROMIUM_ARGS, chromium_available


def kernel_ready(hub, user: str, notebook: str) -> bool:  # noqa: ANN001
    """Lab is connected to the notebook's kernel and the kernel is idle."""
    r = requests.get(f"{hub.url}/user/{user}/api/sessions", headers={"Authorization": f"token {hub.token}"},
                     timeout=10)
    if r.status_code != 200:
        return False
    return any(s["path"] == notebook and s["kernel"]["execution_state"] == "idle"
               and s["kernel"].get("connections", 0) >= 1 for s in r.json())


def one_student(hub, context, prestart: bool) -> dict[str, float]:  # noqa: ANN001
    from coursehub.loadtest.exchange import SCOPE, Exchange, student_version
    from coursehub.loadtest.hubclient import HubSession
    from coursehub.loadtest.platform import local_platform as find_platform

    local = find_platform(hub.settings_file, None, None)
    assignment = local.course.assignments[0].id
    staff = HubSession(hub.url, local.platform, f"bench-staff-{secrets.token_hex(3)}", role="instructor")
    staff.launch(None, time.monotonic() + 120)
    ex = Exchange(hub.url, local.platform.course_id, assignment)
    token = staff.token([SCOPE], time.monotonic() + 60)
    if not ex.is_released(token):
        ex.release(token, student_version(local.course, assignment))
    page = context.new_page()
    student = HubSession(hub.url, local.platform, f"bench-{'on' if prestart else 'off'}-{secrets.token_hex(3)}")
    t0 = time.monotonic()
    location = student.launch(assignment, t0 + 120)
    context.add_cookies([{"name": c.name, "value": c.value, "url": hub.url + (c.path or "/")}
                         for c in student.http.cookies])
    page.goto(location)
    page.wait_for_url("**/lab/tree/**")
    t_lab = time.monotonic()
    path = page.url.split("/lab/tree/", 1)[1]
    user = page.url.split("/user/", 1)[1].split("/", 1)[0]
    notebook = requests.utils.unquote(path)
    while not kernel_ready(hub, user, notebook):
        if time.monotonic() - t_lab > 300:
            raise SystemExit(f"the kernel of {notebook} was not ready in 300 s")
        time.sleep(0.05)
    t_ready = time.monotonic()
    page.close()
    hub.stop_server(user)
    return {"to_lab": t_lab - t0, "lab_to_kernel": t_ready - t_lab, "total": t_ready - t0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="rounds of on / off (default 3)")
    p.add_argument("--warm", action="store_true",
                   help="measure a second student in a browser whose cache already holds Lab's files")
    args = p.parse_args()
    if not chromium_available():
        raise SystemExit(f"needs {CHROMIUM} (./scripts/setup --test)")
    from playwright.sync_api import sync_playwright

    print(f"start: {load()}", flush=True)
    results: dict[bool, list[dict]] = {True: [], False: []}
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="notebook-ready-") as tmp:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for r in range(args.rounds):
                for prestart in (True, False) if r % 2 == 0 else (False, True):
                    root = Path(tmp) / f"{r}-{prestart}"
                    context = browser.new_context()
                    context.set_default_timeout(300_000)
                    with local_platform(root, {"spawner": {"prestart_kernel": prestart}}) as hub:
                        if args.warm:
                            one_student(hub, context, prestart)
                        res = one_student(hub, context, prestart)
                    context.close()
                    results[prestart].append(res)
                    print(f"round {r + 1}, pre-start {'on ' if prestart else 'off'}: launch -> Lab {res['to_lab']:.2f} s"
                          f"  Lab -> kernel ready {res['lab_to_kernel']:.2f} s  total {res['total']:.2f} s  "
                          f"{load()}", flush=True)
        finally:
            browser.close()
    cache = "warm cache (a second student in the same browser)" if args.warm else "cold cache"
    print(f"\n== launch -> notebook open in Lab with its kernel ready, headless chromium, {cache}, "
          f"{args.rounds} round(s) ==")
    for prestart in (True, False):
        rs = results[prestart]
        print(f"pre-start {'on ' if prestart else 'off'}: "
              + " | ".join(f"{k} {min_median([x[k] for x in rs])}" for k in ("to_lab", "lab_to_kernel", "total")))
    print(f"end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
