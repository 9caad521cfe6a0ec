"""A small JupyterLab plugin that lets nbgrader's Assignments panel say what coursehub's server
side (panel.py) tells it, without changing the panel:

- nbgrader titles every failed submit "Invalid Submission" and prints the reason as code; the
  reason is now one sentence, so the plugin titles the dialog "Not submitted" ("Submit after the
  deadline?" for the late warning) and shows the sentence as text;
- after a submit the server answers with a receipt (the service's time, on time or late), which
  nbgrader ignores; the plugin shows it as a notification that stays until dismissed;
- when the assignment has instant feedback on, the answer also names the submission: the plugin
  asks `assignments/instant` every 1.5 s (at most 3 minutes) until the visible tests' results are
  in, and shows them as a second notification ("3 of 4 visible tests pass; failing: ...") whose
  *Details* button lists each visible test with the last line of its error;
- on a course's server (COURSEHUB_COURSE set by the course profile) a command "Course page: <course>"
  opens the student course page of the grading service in a new tab. Its place in the Help and File
  menus is declared in the plugin's settings schema (`jupyter.lab.menus`), the URL comes from the
  server through the page config; without a course the command is not added, so the menu items stay
  hidden.

No build step: it is a hand-written module-federation container (what `jupyter labextension
build` would produce: `window._JUPYTERLAB[name]` with `init` and `get`), written at server start
into the runtime directory and added to JupyterLab's `extra_labextensions_path`, so it needs no
files installed next to the Python package.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

NAME = "@coursehub/assignments"
VERSION = "0.1.0"
ENTRY = "static/remoteEntry.coursehub.js"
COURSE_PAGE_PLUGIN = "course-page"
COURSE_PAGE_COMMAND = "coursehub:course-page"
#: Where the grading service is mounted below the hub's base URL (grading.service.hub.PREFIX, which
#: this module may not import: the service imports the exchange).
GRADING_SERVICE_PATH = "services/grading/"

PLUGIN_JS = r"""
(function () {
  "use strict";
  var NAME = "@coursehub/assignments";
  var LATE = "Press Submit again";

  function tidy(dialog) {
    var message = dialog.querySelector("#submission-message");
    if (!message || message.dataset.coursehub) return;
    message.dataset.coursehub = "1";
    var pre = message.querySelector("pre");
    var text = pre ? pre.textContent.trim() : "";
    var header = dialog.querySelector(".jp-Dialog-header");
    if (header) header.textContent = text.indexOf(LATE) >= 0 ? "Submit after the deadline?" : "Not submitted";
    message.textContent = "";
    var p = document.createElement("p");
    p.className = "coursehub-exchange-message";
    p.textContent = text;
    message.appendChild(p);
  }

  function watchDialogs() {
    var queued = false;
    new MutationObserver(function () {
      if (queued) return;
      queued = true;
      window.requestAnimationFrame(function () {
        queued = false;
        document.querySelectorAll(".jp-Dialog").forEach(tidy);
      });
    }).observe(document.body, { childList: true, subtree: true });
  }

  function pollInstant(app, url, headers, instant, courseId) {
    var base = url.split("?")[0].replace(/\/assignments\/submit$/, "/assignments/instant");
    var query = "?course_id=" + encodeURIComponent(courseId) + "&assignment_id=" +
      encodeURIComponent(instant.assignment_id) + "&submission_id=" + encodeURIComponent(instant.submission_id);
    var tries = 0;
    function again() { if (tries < 120) window.setTimeout(ask, 1500); }
    function ask() {
      tries += 1;
      stockFetch.call(window, base + query, { method: "GET", headers: headers, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          var v = body && body.success ? body.value : null;
          if (v && v.done) {
            app.commands.execute("apputils:notify", {
              message: v.text, type: v.level, options: {
                autoClose: false,
                actions: [{ label: "Details", commandId: DETAILS, caption: "Which visible tests pass",
                            args: { title: v.text, lines: v.details || [] } }]
              }
            });
          } else {
            again();
          }
        })
        .catch(again);
    }
    window.setTimeout(ask, 1000);
  }

  var DETAILS = "coursehub:instant-feedback-details";

  function showDetails(args) {
    var old = document.querySelector(".coursehub-instant-details");
    if (old) old.remove();
    var box = document.createElement("div");
    box.className = "coursehub-instant-details";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-labelledby", "coursehub-instant-title");
    box.style.cssText = "position:fixed;z-index:10000;top:15%;left:50%;transform:translateX(-50%);" +
      "max-width:40em;width:90%;padding:1em 1.5em;background:var(--jp-layout-color1,#fff);" +
      "color:var(--jp-ui-font-color1,#000);border:1px solid var(--jp-border-color1,#999);" +
      "box-shadow:0 4px 16px rgba(0,0,0,.3);font-size:var(--jp-ui-font-size1,13px)";
    var h = document.createElement("h2");
    h.id = "coursehub-instant-title";
    h.style.fontSize = "1.2em";
    h.textContent = args.title || "Instant feedback";
    var list = document.createElement("ul");
    (args.lines || []).forEach(function (line) {
      var li = document.createElement("li");
      li.textContent = line;
      list.appendChild(li);
    });
    var close = document.createElement("button");
    close.className = "jp-Dialog-button jp-mod-accept jp-mod-styled";
    close.textContent = "Close";
    close.onclick = function () { box.remove(); };
    box.addEventListener("keydown", function (e) { if (e.key === "Escape") box.remove(); });
    box.appendChild(h);
    box.appendChild(list);
    box.appendChild(close);
    document.body.appendChild(box);
    close.focus();
  }

  function courseOf(text) {
    try {
      if (text.charAt(0) === "{") return JSON.parse(text).course_id || "";
      return new URLSearchParams(text).get("course_id") || "";
    } catch (e) {
      return "";
    }
  }

  var stockFetch = window.fetch;

  function watchReceipts(app) {
    var stock = window.fetch;
    window.fetch = function (request, init) {
      var url = typeof request === "string" ? request : (request && request.url) || "";
      var submit = /\/assignments\/submit(\?|$)/.test(url);
      var isRequest = typeof request !== "string" && request && typeof request.clone === "function";
      var headers = isRequest ? request.headers : ((init && init.headers) || {});
      var sent = !submit ? null : isRequest ? request.clone().text().catch(function () { return ""; })
        : Promise.resolve(typeof (init && init.body) === "string" ? init.body : "");
      var answer = stock.apply(this, arguments);
      if (submit) {
        answer.then(function (response) {
          return response.clone().json().then(function (body) {
            if (body && body.success && body.receipt) {
              app.commands.execute("apputils:notify", {
                message: body.receipt, type: "success", options: { autoClose: false }
              });
            }
            if (body && body.success && body.instant) {
              sent.then(function (text) { pollInstant(app, url, headers, body.instant, courseOf(text)); });
            }
          });
        }).catch(function () {});
      }
      return answer;
    };
  }

  var COURSE_PAGE = "coursehub:course-page";

  function pageConfig() {
    try {
      var data = document.getElementById("jupyter-config-data");
      return data ? JSON.parse(data.textContent) : {};
    } catch (e) {
      return {};
    }
  }

  var coursePage = {
    id: NAME + ":course-page",
    description: "coursehub: open the student course page (Help and File menus, declared in the schema)",
    autoStart: true,
    activate: function (app) {
      var config = pageConfig();
      var course = config.coursehubCourse, url = config.coursehubCoursePage;
      if (!course || !url || app.commands.hasCommand(COURSE_PAGE)) return;
      app.commands.addCommand(COURSE_PAGE, {
        label: "Course page: " + course,
        caption: "Assignments, due dates and grades of " + course + " (opens in a new tab)",
        execute: function () { window.open(url, "_blank", "noopener"); }
      });
    }
  };

  var plugin = {
    id: NAME + ":plugin",
    description: "coursehub: readable exchange messages and submission receipts in the Assignments panel",
    autoStart: true,
    activate: function (app) {
      if (!app.commands.hasCommand(DETAILS)) {
        app.commands.addCommand(DETAILS, { label: "Instant feedback details", execute: showDetails });
      }
      watchDialogs();
      watchReceipts(app);
    }
  };

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = {
    init: function () { return Promise.resolve(); },
    get: function (module) {
      if (module !== "./extension") return Promise.reject(new Error(NAME + " has no module " + module));
      return Promise.resolve(function () { return { __esModule: true, default: [plugin, coursePage] }; });
    }
  };
})();
"""


def package_json() -> dict:
    return {
        "name": NAME, "version": VERSION, "description": "coursehub's additions to nbgrader's Assignments panel",
        "jupyterlab": {"extension": True, "schemaDir": "schema",
                       "_build": {"load": ENTRY, "extension": "./extension"}},
    }


def course_page_schema() -> dict:
    """The course-page plugin's settings schema: only its menu entries, which JupyterLab's main
    menu reads from every plugin's schema (an entry whose command is missing is not shown)."""
    item = {"command": COURSE_PAGE_COMMAND}
    return {
        "title": "coursehub: course page",
        "description": "Menu entries that open the student course page of this server's course.",
        "jupyter.lab.menus": {"main": [
            {"id": "jp-mainmenu-help", "items": [{"type": "separator", "rank": 1}, {**item, "rank": 1},
                                                 {"type": "separator", "rank": 1}]},
            {"id": "jp-mainmenu-file", "items": [{"type": "separator", "rank": 100}, {**item, "rank": 100}]},
        ]},
        "properties": {},
        "additionalProperties": False,
        "type": "object",
    }


def extension_files() -> dict[str, str]:
    """Relative path -> text of every file of the built extension (the layout `jupyter labextension
    build` writes: schemas under schemas/<package name>/<plugin>.json, beside package.json.orig)."""
    schemas = "schemas/" + NAME
    package = json.dumps(package_json(), indent=2)
    return {"package.json": package, ENTRY: PLUGIN_JS, f"{schemas}/package.json.orig": package,
            f"{schemas}/{COURSE_PAGE_PLUGIN}.json": json.dumps(course_page_schema(), indent=2)}


def write_extension(root: str) -> str:
    """Write the plugin below `root` (a labextensions folder); returns `root`."""
    folder = Path(root, *NAME.split("/"))
    for rel, text in extension_files().items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return root


def course_page_url(course_id: str, base_url: str = "/") -> str:
    """The student course page as the browser reaches it: below the hub's base URL, on the
    grading service's prefix (grading/dashboard/pages.py's `course/<course>/`)."""
    base = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
    return f"{base}{GRADING_SERVICE_PATH}course/{quote(course_id, safe='')}/"


def course_page_config(environ: Mapping[str, str]) -> dict[str, str]:
    """What the course-page command needs in JupyterLab's page config; empty without a course,
    so a server outside a course (or outside the hub's course profiles) gets no command."""
    course = environ.get("COURSEHUB_COURSE", "").strip()
    if not course:
        return {}
    return {"coursehubCourse": course,
            "coursehubCoursePage": course_page_url(course, environ.get("JUPYTERHUB_BASE_URL", "/"))}


def add_to_lab(server_app: Any) -> None:
    """Put the plugin on JupyterLab's extension path (JupyterLab loads after us: name order)."""
    from jupyter_core.paths import jupyter_runtime_dir

    labs = server_app.extension_manager.extension_apps.get("jupyterlab", set())
    if not labs:
        return
    root = write_extension(os.path.join(jupyter_runtime_dir(), "coursehub-labextensions"))
    # Per server, not in the shared files: local mode runs every user's server as one Unix user.
    server_app.web_app.settings.setdefault("page_config_data", {}).update(course_page_config(os.environ))
    for lab in labs:
        if root not in lab.extra_labextensions_path:
            lab.extra_labextensions_path = [*lab.extra_labextensions_path, root]
