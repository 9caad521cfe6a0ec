"""A small JupyterLab plugin that lets nbgrader's Assignments panel say what coursehub's server
side (panel.py) tells it, without changing the panel:

- nbgrader titles every failed submit "Invalid Submission" and prints the reason as code; the
  reason is now one sentence, so the plugin titles the dialog "Not submitted" ("Submit after the
  deadline?" for the late warning) and shows the sentence as text;
- after a submit the server answers with a receipt (the service's time, on time or late), which
  nbgrader ignores; the plugin shows it as a notification that stays until dismissed.

No build step: it is a hand-written module-federation container (what `jupyter labextension
build` would produce: `window._JUPYTERLAB[name]` with `init` and `get`), written at server start
into the runtime directory and added to JupyterLab's `extra_labextensions_path`, so it needs no
files installed next to the Python package.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

NAME = "@coursehub/assignments"
VERSION = "0.1.0"
ENTRY = "static/remoteEntry.coursehub.js"

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

  function watchReceipts(app) {
    var stock = window.fetch;
    window.fetch = function (request, init) {
      var url = typeof request === "string" ? request : (request && request.url) || "";
      var answer = stock.apply(this, arguments);
      if (/\/assignments\/submit(\?|$)/.test(url)) {
        answer.then(function (response) {
          return response.clone().json().then(function (body) {
            if (body && body.success && body.receipt) {
              app.commands.execute("apputils:notify", {
                message: body.receipt, type: "success", options: { autoClose: false }
              });
            }
          });
        }).catch(function () {});
      }
      return answer;
    };
  }

  var plugin = {
    id: NAME + ":plugin",
    description: "coursehub: readable exchange messages and submission receipts in the Assignments panel",
    autoStart: true,
    activate: function (app) {
      watchDialogs();
      watchReceipts(app);
    }
  };

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = {
    init: function () { return Promise.resolve(); },
    get: function (module) {
      if (module !== "./extension") return Promise.reject(new Error(NAME + " has no module " + module));
      return Promise.resolve(function () { return { __esModule: true, default: [plugin] }; });
    }
  };
})();
"""


def package_json() -> dict:
    return {
        "name": NAME, "version": VERSION, "description": "coursehub's additions to nbgrader's Assignments panel",
        "jupyterlab": {"extension": True, "_build": {"load": ENTRY, "extension": "./extension"}},
    }


def write_extension(root: str) -> str:
    """Write the plugin below `root` (a labextensions folder); returns `root`."""
    folder = Path(root, *NAME.split("/"))
    (folder / "static").mkdir(parents=True, exist_ok=True)
    for rel, text in (("package.json", json.dumps(package_json(), indent=2)), (ENTRY, PLUGIN_JS)):
        path = folder / rel
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return root


def add_to_lab(server_app: Any) -> None:
    """Put the plugin on JupyterLab's extension path (JupyterLab loads after us: name order)."""
    from jupyter_core.paths import jupyter_runtime_dir

    labs = server_app.extension_manager.extension_apps.get("jupyterlab", set())
    if not labs:
        return
    root = write_extension(os.path.join(jupyter_runtime_dir(), "coursehub-labextensions"))
    for lab in labs:
        if root not in lab.extra_labextensions_path:
            lab.extra_labextensions_path = [*lab.extra_labextensions_path, root]
