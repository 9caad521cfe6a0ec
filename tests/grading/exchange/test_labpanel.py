"""The JupyterLab plugin's course-page link (issue 13): the menu entries declared in the written
extension's settings schema, read the way JupyterLab's server reads them; the command added from
the page config only on a course's server; the URL built from the course and the hub's base URL."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from coursehub.grading.exchange import labpanel

PLUGIN_ID = f"{labpanel.NAME}:{labpanel.COURSE_PAGE_PLUGIN}"

# Runs the hand-written container in node with a stand-in window, document and app, activates every
# plugin and prints which commands were added and what the course page command opens.
NODE_HARNESS = r"""
const vm = require("vm");
const [code, config] = [process.argv[1], process.argv[2]];
const opened = [];
const window = { open: (...args) => { opened.push(args); return null; }, fetch: () => Promise.resolve() };
const document = {
  getElementById: (id) => (id === "jupyter-config-data" && config ? { textContent: config } : null),
  body: {}, querySelectorAll: () => [],
};
class MutationObserver { observe() {} }
vm.runInNewContext(code, { window, document, MutationObserver, URLSearchParams });
const commands = new Map();
const app = { commands: {
  hasCommand: (id) => commands.has(id),
  addCommand: (id, spec) => commands.set(id, spec),
  execute: () => Promise.resolve(),
} };
window._JUPYTERLAB["@coursehub/assignments"].get("./extension").then((factory) => {
  const plugins = factory().default;
  plugins.forEach((p) => p.activate(app));
  const page = commands.get("coursehub:course-page");
  if (page) page.execute();
  console.log(JSON.stringify({
    plugins: plugins.map((p) => p.id),
    commands: [...commands.keys()],
    label: page ? page.label : null,
    opened,
  }));
});
"""


def run_plugin(page_config: dict | None) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (./scripts/setup installs it)")
    config = json.dumps(page_config) if page_config is not None else ""
    out = subprocess.run([node, "-e", NODE_HARNESS, labpanel.PLUGIN_JS, config],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def test_written_extension_declares_the_menu_entries_where_jupyterlab_reads_them(tmp_path):
    from jupyterlab_server.settings_utils import get_settings

    root = labpanel.write_extension(str(tmp_path / "labextensions"))
    (tmp_path / "schemas").mkdir()  # JupyterLab's own schemas (none here)
    found, warnings = get_settings(str(tmp_path / "app"), str(tmp_path / "schemas"), str(tmp_path / "user"),
                                   labextensions_path=[root])
    assert warnings == []
    by_id = {s["id"]: s for s in found["settings"]}
    assert PLUGIN_ID in by_id, sorted(by_id)
    assert by_id[PLUGIN_ID]["version"] == labpanel.VERSION  # from schemas/<name>/package.json.orig
    menus = {m["id"]: m["items"] for m in by_id[PLUGIN_ID]["schema"]["jupyter.lab.menus"]["main"]}
    assert set(menus) == {"jp-mainmenu-help", "jp-mainmenu-file"}
    for items in menus.values():
        assert [i["command"] for i in items if "command" in i] == [labpanel.COURSE_PAGE_COMMAND]
    package = json.loads((Path(root) / labpanel.NAME / "package.json").read_text())
    assert package["jupyterlab"]["schemaDir"] == "schema"


def test_the_command_in_the_menus_is_the_one_the_plugin_adds_and_it_opens_the_course_page():
    url = labpanel.course_page_url("stat 101/b")
    result = run_plugin({"coursehubCourse": "stat 101/b", "coursehubCoursePage": url})
    assert f"{labpanel.NAME}:{labpanel.COURSE_PAGE_PLUGIN}" in result["plugins"]
    assert labpanel.COURSE_PAGE_COMMAND in result["commands"]
    assert result["label"] == "Course page: stat 101/b"
    assert result["opened"] == [[url, "_blank", "noopener"]]


@pytest.mark.parametrize("page_config", [None, {}, {"hubPrefix": "/hub/"}, {"coursehubCourse": "x"}])
def test_without_a_course_there_is_no_command_so_the_menu_entries_stay_hidden(page_config):
    result = run_plugin(page_config)
    assert labpanel.COURSE_PAGE_COMMAND not in result["commands"]
    assert "coursehub:instant-feedback-details" in result["commands"]  # the other plugin still runs
    assert result["opened"] == []


def test_course_page_url_is_built_from_the_course_below_the_hubs_base_url():
    from coursehub.grading.dashboard.pages import page_handlers
    from coursehub.grading.service.hub import PREFIX

    assert "/" + labpanel.GRADING_SERVICE_PATH == PREFIX
    assert labpanel.course_page_url("demo-101") == "/services/grading/course/demo-101/"
    assert labpanel.course_page_url("demo-101", "/jh/") == "/jh/services/grading/course/demo-101/"
    assert labpanel.course_page_url("demo-101", "jh") == "/jh/services/grading/course/demo-101/"
    assert labpanel.course_page_url("../admin?x#y") == "/services/grading/course/..%2Fadmin%3Fx%23y/"
    route = page_handlers()[0][0]
    tail = labpanel.course_page_url("demo-101").removeprefix(PREFIX)
    assert re.fullmatch(route, tail) and page_handlers()[0][1].__name__ == "StudentCoursePage"


def test_page_config_has_the_course_only_on_a_courses_server():
    assert labpanel.course_page_config({}) == {}
    assert labpanel.course_page_config({"COURSEHUB_COURSE": "  "}) == {}
    assert labpanel.course_page_config({"COURSEHUB_COURSE": "abc101", "JUPYTERHUB_BASE_URL": "/jh/"}) == {
        "coursehubCourse": "abc101", "coursehubCoursePage": "/jh/services/grading/course/abc101/"}


def test_add_to_lab_puts_the_course_in_this_servers_page_config(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("COURSEHUB_COURSE", "abc101")
    monkeypatch.delenv("JUPYTERHUB_BASE_URL", raising=False)
    class Lab:  # hashable, like JupyterLab's extension app in extension_apps' set
        extra_labextensions_path: list[str] = []

    lab = Lab()
    settings = {"page_config_data": {"buildAvailable": False}}
    server = SimpleNamespace(extension_manager=SimpleNamespace(extension_apps={"jupyterlab": {lab}}),
                             web_app=SimpleNamespace(settings=settings))
    labpanel.add_to_lab(server)
    assert settings["page_config_data"] == {"buildAvailable": False, "coursehubCourse": "abc101",
                                           "coursehubCoursePage": "/services/grading/course/abc101/"}
    (root,) = lab.extra_labextensions_path
    assert (Path(root) / labpanel.NAME / "schemas" / labpanel.NAME / "course-page.json").is_file()

    monkeypatch.delenv("COURSEHUB_COURSE")
    settings.clear()
    labpanel.add_to_lab(server)
    assert settings == {"page_config_data": {}}
    assert lab.extra_labextensions_path == [root]  # not added twice
