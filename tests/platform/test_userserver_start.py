"""The user server's start: coursehub's entry point (deferred imports, no yarn query, nothing imported
from the user's home) and the spawner's readiness check (fast, and a server that dies fails at once)."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from support.net import free_port

from coursehub import deferred
from coursehub.platform import userserver
from coursehub.platform.spawner import LocalCourseSpawner


def _run(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_deferred_module_loads_on_its_first_call(tmp_path, monkeypatch):
    (tmp_path / "slowmod_ch.py").write_text(
        "import os\nLOADS = int(os.environ.get('SLOWMOD_LOADS', '0')) + 1\nos.environ['SLOWMOD_LOADS'] = str(LOADS)\n"
        "def double(x, *, by=2):\n    return x * by\nCONSTANT = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("SLOWMOD_LOADS", raising=False)
    monkeypatch.delitem(sys.modules, "slowmod_ch", raising=False)
    assert deferred.defer_import("slowmod_ch", ("double",))
    try:
        from slowmod_ch import double  # what jsonschema does: nothing runs yet

        assert "SLOWMOD_LOADS" not in __import__("os").environ
        assert double(3, by=5) == 15  # the real function, with its arguments
        real = sys.modules["slowmod_ch"]
        assert real.LOADS == 1 and real.CONSTANT == 42 and real.double(4) == 8
        assert double(1) == 2 and real.LOADS == 1  # loaded once
        assert not deferred.defer_import("slowmod_ch", ("double",))  # imported already: left alone
    finally:
        sys.modules.pop("slowmod_ch", None)


def test_other_attributes_of_a_deferred_module_load_it_too(tmp_path, monkeypatch):
    (tmp_path / "slowmod_ch2.py").write_text("VALUE = 'real'\ndef f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slowmod_ch2", raising=False)
    try:
        assert deferred.defer_import("slowmod_ch2", ("f",))
        stand_in = sys.modules["slowmod_ch2"]
        assert stand_in.__spec__.name == "slowmod_ch2"
        assert not hasattr(stand_in, "__path__")  # dunders never load it (import machinery probes them)
        assert stand_in.VALUE == "real"
        assert sys.modules["slowmod_ch2"] is not stand_in
    finally:
        sys.modules.pop("slowmod_ch2", None)


def test_import_without_puts_a_dependency_off_for_that_import_only(tmp_path, monkeypatch):
    heavy = tmp_path / "heavypkg_ch"
    heavy.mkdir()
    (heavy / "__init__.py").write_text("import os\nos.environ['HEAVYPKG_LOADS'] = 'yes'\n")
    (heavy / "tools.py").write_text("def unpack(x, *, twice=False):\n    return x * (2 if twice else 1)\n")
    (tmp_path / "user_ch.py").write_text("from heavypkg_ch.tools import unpack\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("HEAVYPKG_LOADS", raising=False)
    names = ("heavypkg_ch", "heavypkg_ch.tools", "user_ch")
    try:
        assert deferred.import_without("user_ch", {"heavypkg_ch.tools": ("unpack",)})
        assert "HEAVYPKG_LOADS" not in __import__("os").environ  # imported, and the package never ran
        assert not any(n in sys.modules for n in names[:2])  # the stand-ins are gone again
        user = sys.modules["user_ch"]
        assert user.unpack("ab", twice=True) == "abab"  # the real function, with its arguments
        assert __import__("os").environ["HEAVYPKG_LOADS"] == "yes"
        import heavypkg_ch.tools

        assert heavypkg_ch.tools.unpack is not user.unpack  # a later import is the real module
        assert not deferred.import_without("user_ch", {"heavypkg_ch.tools": ("unpack",)})  # imported: left alone
    finally:
        for n in names:
            sys.modules.pop(n, None)


def test_a_package_without_its_init_runs_the_init_only_when_its_other_names_are_asked(tmp_path, monkeypatch):
    pkg = tmp_path / "fatpkg_ch"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("import os\nos.environ['FATPKG_INIT'] = str(int(os.environ.get('FATPKG_INIT', '0')) + 1)\n"
                                     "from .light import Light\nBIG = 'big'\n")
    (pkg / "light.py").write_text("class Light:\n    pass\n")
    (pkg / "other.py").write_text("X = 1\n")
    (pkg / "sub" / "__init__.py").write_text("from .deep import Deep\nHEAVY_SUB = True\n")
    (pkg / "sub" / "deep.py").write_text("class Deep:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("FATPKG_INIT", raising=False)
    environ = __import__("os").environ
    names = ("fatpkg_ch", "fatpkg_ch.light", "fatpkg_ch.other", "fatpkg_ch.sub", "fatpkg_ch.sub.deep")
    try:
        assert deferred.package_without_init("fatpkg_ch", {"light": ("Light",)})
        assert deferred.package_without_init("fatpkg_ch.sub", {"deep": ("Deep",)})
        import fatpkg_ch
        from fatpkg_ch import Light, other  # a preloaded name, and a submodule by attribute
        from fatpkg_ch.sub import Deep

        assert Light.__module__ == "fatpkg_ch.light" and other.X == 1 and Deep.__module__ == "fatpkg_ch.sub.deep"
        assert "FATPKG_INIT" not in environ and "HEAVY_SUB" not in vars(fatpkg_ch.sub)  # no __init__ ran
        assert fatpkg_ch.BIG == "big" and environ["FATPKG_INIT"] == "1"  # another name: the real __init__, once
        assert fatpkg_ch.Light is Light and fatpkg_ch.other is other
        assert fatpkg_ch.sub.HEAVY_SUB is True and environ["FATPKG_INIT"] == "1"
        with pytest.raises(AttributeError):
            fatpkg_ch.no_such_name  # noqa: B018
        assert not deferred.package_without_init("fatpkg_ch", {})  # imported already: left alone
    finally:
        for n in names:
            sys.modules.pop(n, None)


def test_a_package_laid_out_otherwise_imports_the_ordinary_way(tmp_path, monkeypatch):
    (tmp_path / "oddpkg_ch").mkdir()
    (tmp_path / "oddpkg_ch" / "__init__.py").write_text("READY = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert not deferred.package_without_init("oddpkg_ch", {"missing_submodule": ("X",)})
        assert "oddpkg_ch" not in sys.modules
        import oddpkg_ch

        assert oddpkg_ch.READY is True
    finally:
        sys.modules.pop("oddpkg_ch", None)
    assert not deferred.package_without_init("no_such_package_coursehub_xyz", {})


def test_a_missing_module_is_not_faked():
    assert not deferred.defer_import("no_such_module_coursehub_xyz", ("f",))
    assert "no_such_module_coursehub_xyz" not in sys.modules


@pytest.mark.skipif(importlib.util.find_spec("rfc3987_syntax") is None, reason="rfc3987-syntax not installed")
def test_jsonschema_checks_iris_as_before_without_the_parser_at_import():
    out = _run(
        "import sys\n"
        "import coursehub  # puts the stand-in in place\n"
        "import jsonschema, jupyter_events\n"
        "assert 'lark' not in sys.modules, 'the IRI parser was built at import'\n"
        "check = jsonschema.FormatChecker()\n"
        "assert check.conforms('https://example.org/r%C3%A9sum%C3%A9?q=1', 'iri')\n"
        "assert not check.conforms('http://exa mple.org/<script>', 'iri')\n"
        "assert not check.conforms('no scheme at all', 'iri')\n"
        "assert check.conforms('../relative/path', 'iri-reference')\n"
        "assert 'lark' in sys.modules\n"
        "print('ok')\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.skipif(importlib.util.find_spec("rfc3986_validator") is None, reason="rfc3986-validator not installed")
def test_jsonschema_checks_uris_as_before_without_compiling_them_at_import():
    out = _run(
        "import sys\n"
        "import coursehub  # puts the stand-in in place\n"
        "import jsonschema, jupyter_events\n"
        "assert 'URI_RE_COMP' not in vars(sys.modules['rfc3986_validator']), 'the URI patterns were compiled at import'\n"
        "check = jsonschema.FormatChecker()\n"
        "assert check.conforms('https://example.org/a?b=1#c', 'uri')\n"
        "assert not check.conforms('no scheme at all', 'uri')\n"
        "assert not check.conforms('http://exa mple.org/', 'uri')\n"
        "assert check.conforms('../relative/path', 'uri-reference')\n"
        "assert not check.conforms('http://[::1', 'uri-reference')\n"
        "import rfc3986_validator\n"
        "assert rfc3986_validator.validate_rfc3986('mailto:a@b.org')  # the real module, after first use\n"
        "assert rfc3986_validator.URI_RE_COMP.pattern\n"
        "print('ok')\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.skipif(importlib.util.find_spec("isoduration") is None, reason="isoduration not installed")
def test_jsonschema_checks_durations_as_before_without_arrow_at_import():
    """jsonschema takes isoduration's exception class at import; the class it catches must be the one
    the real parser raises, or a malformed duration would raise instead of failing the check."""
    out = _run(
        "import sys\n"
        "import coursehub  # the package without its __init__\n"
        "import jsonschema, jupyter_events\n"
        "assert 'arrow' not in sys.modules and 'isoduration.parser.parsing' not in sys.modules\n"
        "check = jsonschema.FormatChecker()\n"
        "assert check.conforms('P3Y6M4DT12H30M5S', 'duration')\n"
        "assert not check.conforms('P', 'duration')  # EmptyDuration, caught as DurationParsingException\n"
        "assert not check.conforms('PT1X', 'duration')\n"
        "assert 'arrow' in sys.modules\n"
        "import isoduration\n"
        "from isoduration import parse_duration, DurationParsingException, format_duration\n"
        "from isoduration.parser.exceptions import EmptyDuration\n"
        "assert issubclass(EmptyDuration, DurationParsingException)\n"
        "assert isoduration.DurationParsingException is DurationParsingException\n"
        "assert format_duration(parse_duration('P1D')) == 'P1D'\n"
        "print('ok')\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.skipif(importlib.util.find_spec("jupyterlab") is None, reason="JupyterLab not installed")
def test_jupyterlab_is_imported_without_asking_yarn_and_builds_still_do():
    out = _run(
        "import subprocess\n"
        "calls = []\n"
        "real = subprocess.check_output\n"
        "def spy(cmd, *a, **k):\n"
        "    calls.append(list(map(str, cmd)))\n"
        "    return real(cmd, *a, **k)\n"
        "subprocess.check_output = spy\n"
        "from coursehub.platform.userserver import import_jupyterlab\n"
        "import_jupyterlab()\n"
        "import jupyterlab.labapp, jupyterlab.commands as c\n"
        "assert jupyterlab.labapp.app_version, 'no app version'\n"
        "assert not [x for x in calls if 'config' in x], calls\n"
        "assert c._yarn_config.__name__ == '_yarn_config'  # the real one is back for builds\n"
        "print('ok')\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("pod", [False, True])
def test_the_launch_never_imports_from_the_users_home(tmp_path, pod):
    """A student's home is the server's working folder: files there named like coursehub, jupyterhub
    or a standard-library module must not replace them in their server (local and pod launch)."""
    marker = tmp_path / "imported-from-home"
    trap = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\nraise SystemExit(97)\n"
    for name in ("coursehub.py", "jupyterhub.py", "json.py", "traitlets.py"):
        (tmp_path / name).write_text(trap)
    script = str(Path(sys.executable).parent / "jupyterhub-singleuser")
    cmd = userserver.command(sys.executable, script, ["--version"])
    if pod:  # the pod's python3 on PATH, here this interpreter
        cmd = [sys.executable, *userserver.pod_command([script, "--version"])[1:]]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert not marker.exists(), marker.read_text()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()  # the version of the server


@pytest.mark.parametrize(("launch", "script"), [("LAUNCH", "/env/bin/jupyterhub-singleuser"),
                                               ("POD_LAUNCH", "jupyterhub-singleuser")])
def test_the_server_gets_the_arguments_the_script_would(launch, script):
    """sys.argv as when `jupyterhub-singleuser` runs: [the script, *its arguments] (local and pod)."""
    out = _run("import sys\n"
               "from coursehub.platform import userserver\n"
               "userserver.main = lambda: print(sys.argv)\n"
               f"sys.argv = ['-c', {script!r}, '--debug', '--x=1']\n"
               f"exec(userserver.{launch})\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"[{script!r}, '--debug', '--x=1']"


def test_collector_paused_turns_collection_off_inside_and_freezes_what_was_made():
    """Run in a fresh interpreter: the pytest process's own collector state is not ours to change."""
    out = _run("import gc\n"
               "from coursehub.startup import collector_paused\n"
               "before = gc.get_freeze_count()\n"
               "with collector_paused():\n"
               "    inside = gc.isenabled()\n"
               "    made = [[i] for i in range(1000)]\n"
               "print(inside, gc.isenabled(), gc.get_freeze_count() - before >= 1000)\n"
               "gc.disable()\n"
               "with collector_paused():\n"
               "    pass\n"
               "print(gc.isenabled())\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True", "False"]


def test_the_server_imports_without_the_collector_and_serves_with_it():
    """The server's imports ran with the collector paused (they are frozen afterwards), and the
    server itself runs with the collector on: a long-lived server must still free its cycles."""
    out = _run("import gc, sys\n"
               "import jupyterhub.singleuser as singleuser\n"
               "frozen = gc.get_freeze_count()\n"
               "singleuser.main = lambda: print(gc.isenabled(), gc.get_freeze_count() > frozen,\n"
               "                                'jupyter_server.serverapp' in sys.modules)\n"
               "from coursehub.platform import userserver\n"
               "userserver.main()\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"]


# --- the spawner -------------------------------------------------------------------------------


def spawner(tmp_path: Path, course_python: Path | None = None) -> LocalCourseSpawner:
    sp = LocalCourseSpawner.__new__(LocalCourseSpawner)
    object.__setattr__(sp, "_trait_values", {})
    sp._trait_values.update(http_timeout=30)
    sp.user = SimpleNamespace(name="u1", groups=[])
    sp._course_python = course_python
    return sp


def test_the_server_command_goes_through_coursehubs_entry(tmp_path):
    platform_bin, env_bin = tmp_path / "platform" / "bin", tmp_path / "env" / "bin"
    for b in (platform_bin, env_bin):
        b.mkdir(parents=True)
        (b / "python").touch()
    single = [str(platform_bin / "jupyterhub-singleuser"), "--debug"]
    assert spawner(tmp_path).server_command(single) == [
        str(platform_bin / "python"), "-c", userserver.LAUNCH, str(platform_bin / "jupyterhub-singleuser"), "--debug"]
    assert spawner(tmp_path, env_bin / "python").server_command(single) == [
        str(env_bin / "python"), "-c", userserver.LAUNCH, str(env_bin / "jupyterhub-singleuser"), "--debug"]
    # an operator's own command runs as configured (a course environment still supplies its server)
    own = [str(platform_bin / "my-server"), "--x"]
    assert spawner(tmp_path).server_command(own) == own
    assert spawner(tmp_path, env_bin / "python").server_command(own) == [str(env_bin / "jupyterhub-singleuser"),
                                                                         "--x"]


def process(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code])


async def test_start_returns_as_soon_as_the_server_listens(tmp_path):
    sp = spawner(tmp_path)
    sp.proc = process("import time; time.sleep(60)")
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nobody listens yet

    async def listen_later():
        await asyncio.sleep(0.3)
        return await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)

    later = asyncio.create_task(listen_later())
    try:
        await asyncio.wait_for(sp._until_listening("127.0.0.1", port), 10)
        assert later.done()  # it waited for the server, and did not give up early
        (await later).close()
    finally:
        sp.proc.kill()
        sp.proc.wait()


async def test_a_server_that_exits_while_starting_fails_the_start(tmp_path):
    sp = spawner(tmp_path)
    sp.proc = process("raise SystemExit(3)")
    with pytest.raises(RuntimeError, match="exited while starting .exit status 3"):
        await asyncio.wait_for(sp._until_listening("127.0.0.1", 9), 10)


async def test_a_server_that_runs_but_never_listens_fails_the_start_at_the_http_timeout(tmp_path):
    sp = spawner(tmp_path)
    sp._trait_values.update(http_timeout=1)
    sp.proc = process("import time; time.sleep(60)")
    try:
        with pytest.raises(RuntimeError, match="did not accept connections within 1 s"):
            await asyncio.wait_for(sp._until_listening("127.0.0.1", free_port()), 10)
        assert sp.proc.poll() is None  # still running: the hub's stop after a failed start ends it
    finally:
        sp.proc.kill()
        sp.proc.wait()


async def test_without_a_process_the_hub_decides(tmp_path):
    sp = spawner(tmp_path)  # e.g. a subclass that starts servers elsewhere
    await asyncio.wait_for(sp._until_listening("127.0.0.1", 9), 5)


def test_a_pod_whose_python_lacks_coursehub_runs_the_plain_command():
    """POD_LAUNCH in an image where python3 cannot import coursehub (here: no site-packages) execs
    the configured command with its arguments instead of failing the server's start."""
    out = subprocess.run([sys.executable, "-S", "-c", userserver.POD_LAUNCH, "echo", "plain", "--debug"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "plain --debug"
