"""`coursehub lti`: review the LMS platforms that registered themselves (LTI Dynamic Registration).

    coursehub lti registrations [--disabled]   # name, state, issuer, client id, deployments, since
    coursehub lti reject NAME                  # launches from it are refused at once, grades stop
    coursehub lti approve NAME                 # active again

A registration is active when it arrives: the hub admin who made its one-time link approved it in
advance. Operators keep the last word: a rejected platform's launches are refused
(`reason=platform_disabled`) from the next launch on, without a hub restart, and the grading
service sends it no grades or roster requests. Nothing is deleted, so `approve` undoes `reject`.
Platforms from the settings (`auth.lti.platforms`) are changed there, not here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", type=Path, help="platform settings file (default: $COURSEHUB_SETTINGS or built-in)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("registrations", help="list the dynamically registered platforms and their state")
    ls.add_argument("--disabled", action="store_true", help="only the rejected ones")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    for action, help_ in (("approve", "make a registered platform active (again)"),
                          ("reject", "switch a registered platform off: its launches are refused")):
        a = sub.add_parser(action, help=help_)
        a.add_argument("name", metavar="NAME", help="the platform's name (see `coursehub lti registrations`)")


def _rows(listing: list[dict]) -> list[dict]:
    out = []
    for r in listing:
        data = json.loads(r["data"])
        out.append({"name": r["name"], "state": r["state"], "issuer": r["issuer"],
                    "client_ids": data.get("client_ids", []), "deployment_ids": data.get("deployment_ids", []),
                    "registered": _when(r["created_at"]),
                    "changed": f"{_when(r['changed_at'])} by {r['changed_by']}" if r.get("changed_at") else ""})
    return out


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _print_table(rows: list[dict]) -> None:
    if not rows:
        print("no dynamically registered platforms")
        return
    table = [("NAME", "STATE", "ISSUER", "CLIENT ID", "DEPLOYMENTS", "REGISTERED", "CHANGED")]
    table += [(r["name"], r["state"], r["issuer"], ",".join(r["client_ids"]), ",".join(r["deployment_ids"]) or "-",
               r["registered"], r["changed"] or "-") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def run(args: argparse.Namespace) -> int:
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.settings import load_settings

    from .registration_store import ACTIVE, DISABLED, RegistrationStore
    from .services import open_store, store_url

    try:
        settings = load_settings(args.settings)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    url = store_url(settings)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        print(f"error: no LTI database at {url.removeprefix('sqlite:///')}: has the hub started with these "
              "settings?", file=sys.stderr)
        return 1
    store = open_store(settings)
    try:
        registrations = RegistrationStore(store.engine)
        if args.action == "registrations":
            rows = [r for r in _rows(registrations.listing()) if r["state"] == DISABLED or not args.disabled]
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                _print_table(rows)
            return 0
        state = ACTIVE if args.action == "approve" else DISABLED
        if not registrations.set_state(args.name, state, _operator()):
            print(f"error: no dynamically registered platform is named {args.name!r} (see `coursehub lti "
                  "registrations`; platforms from the settings are changed in auth.lti.platforms)", file=sys.stderr)
            return 1
        print(f"{args.name}: {state}" + (" (its launches are refused from now on)" if state == DISABLED else ""))
        return 0
    finally:
        store.dispose()


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
