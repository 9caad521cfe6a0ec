"""`coursehub lti`: the LMS platforms the hub knows, and the operators' approval of the ones that
registered themselves (LTI Dynamic Registration).

    coursehub lti platforms [--json]   # every platform: settings ones (state "settings") and stored ones
    coursehub lti pending [--json]     # stored registrations waiting for approval
    coursehub lti approve NAME         # active: its launches, grades and rosters work
    coursehub lti reject NAME          # switched off (pending or active): launches refused, grades stop

A dynamic registration arrives *pending*: the LMS admin who ran the handshake is not the coursehub
operator. Its launches are refused (`reason=platform_pending`) and the grading service leaves it
alone until an operator approves it. A rejected platform's launches are refused
(`reason=platform_disabled`). Decisions hold from the next launch on, without a hub restart; nothing
is deleted, so `approve` undoes `reject`. Registrations stored before approval existed stay active.
Platforms from the settings (`auth.lti.platforms`) are changed there, not here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from pathlib import Path
from typing import Any

#: The state shown for platforms from the settings file.
SETTINGS_STATE = "settings"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", type=Path, help="platform settings file (default: $COURSEHUB_SETTINGS or built-in)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, help_ in (("platforms", "list every LMS platform the hub knows: from the settings and registered"),
                          ("pending", "list the registered platforms waiting for an operator's approval")):
        ls = sub.add_parser(action, help=help_)
        ls.add_argument("--json", action="store_true", help="machine-readable output")
    for action, help_ in (("approve", "make a registered platform active (pending or rejected before)"),
                          ("reject", "switch a registered platform off (pending or active): its launches are "
                           "refused")):
        a = sub.add_parser(action, help=help_)
        a.add_argument("name", metavar="NAME", help="the platform's name (see `coursehub lti platforms`)")


def _row(data: dict, state: str, registered: str = "", changed: str = "") -> dict:
    return {"name": data["name"], "state": state, "issuer": data["issuer"],
            "client_ids": list(data.get("client_ids", [])), "deployment_ids": list(data.get("deployment_ids", [])),
            "registered": registered, "changed": changed}


def _rows(listing: list[dict]) -> list[dict]:
    return [_row(json.loads(r["data"]), r["state"], _when(r["created_at"]),
                 f"{_when(r['changed_at'])} by {r['changed_by']}" if r.get("changed_at") else "")
            for r in listing]


def _settings_rows(settings: Any) -> list[dict]:
    return [_row(p.model_dump(), SETTINGS_STATE) for p in settings.auth.lti.platforms]


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _print_table(rows: list[dict], empty: str) -> None:
    if not rows:
        print(empty)
        return
    table = [("NAME", "STATE", "ISSUER", "CLIENT ID", "DEPLOYMENTS", "REGISTERED", "CHANGED")]
    table += [(r["name"], r["state"], r["issuer"], ",".join(r["client_ids"]), ",".join(r["deployment_ids"]) or "-",
               r["registered"] or "-", r["changed"] or "-") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _show(rows: list[dict], as_json: bool, empty: str) -> int:
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows, empty)
    return 0


def run(args: argparse.Namespace) -> int:
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.settings import load_settings

    from .registration_store import ACTIVE, DISABLED, PENDING, RegistrationStore
    from .services import open_store, store_url

    try:
        settings = load_settings(args.settings)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    url = store_url(settings)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        if args.action == "platforms":  # the settings ones are known without the hub's database
            return _show(_settings_rows(settings), args.json, "no LMS platforms")
        print(f"error: no LTI database at {url.removeprefix('sqlite:///')}: has the hub started with these "
              "settings?", file=sys.stderr)
        return 1
    store = open_store(settings)
    try:
        registrations = RegistrationStore(store.engine)
        if args.action == "platforms":
            return _show(_settings_rows(settings) + _rows(registrations.listing()), args.json, "no LMS platforms")
        if args.action == "pending":
            rows = [r for r in _rows(registrations.listing()) if r["state"] == PENDING]
            return _show(rows, args.json, "no registrations wait for approval")
        state = ACTIVE if args.action == "approve" else DISABLED
        if not registrations.set_state(args.name, state, _operator()):
            where = ("it comes from the settings: change it in auth.lti.platforms"
                     if any(p.name == args.name for p in settings.auth.lti.platforms) else
                     "see `coursehub lti platforms`")
            print(f"error: no dynamically registered platform is named {args.name!r} ({where})", file=sys.stderr)
            return 1
        print(f"{args.name}: {state} (its launches are "
              + ("accepted from now on)" if state == ACTIVE else "refused from now on)"))
        return 0
    finally:
        store.dispose()


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
