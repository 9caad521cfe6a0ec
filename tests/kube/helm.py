"""The real Helm 3 for the chart tests and the rehearsal (installed by scripts/install-helm).

`helm dependency build` runs offline: the packaged z2jh chart in ../shared/z2jh is served from
127.0.0.1 and listed in a throwaway Helm home as the cached index of the chart's real repository
URL, so Chart.yaml and the committed Chart.lock keep https://hub.jupyter.org/helm-chart/.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "coursehub"
Z2JH_TGZ = REPO.parent / "shared" / "z2jh" / "jupyterhub-4.4.0.tgz"
Z2JH_REPO_URL = "https://hub.jupyter.org/helm-chart/"
KUBE_VERSION = "1.32.0"


class HelmError(RuntimeError):
    """Helm exited non-zero (the message holds its output)."""


def helm_binary() -> str:
    """.venv/bin/helm (scripts/install-helm), else one on PATH; an error says how to get it."""
    local = REPO / ".venv" / "bin" / "helm"
    found = str(local) if local.is_file() else shutil.which("helm")
    if not found:
        raise HelmError("no helm binary: run scripts/install-helm (scripts/setup --test does)")
    return found


def run(args: list[str], home: Path, timeout: float = 180) -> str:
    env = {**os.environ, "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_DATA_HOME": str(home / "data")}
    res = subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=timeout, env=env)
    if res.returncode != 0:
        raise HelmError(f"helm {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return res.stdout + res.stderr


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D102
        pass


def build_chart(workdir: Path) -> Path:
    """A copy of helm/coursehub with its z2jh dependency built from the packaged chart, offline."""
    if not Z2JH_TGZ.is_file():
        raise HelmError(f"the packaged z2jh chart is missing: {Z2JH_TGZ}")
    home = workdir / "helm-home"
    served = workdir / "served"
    served.mkdir(parents=True)
    shutil.copy(Z2JH_TGZ, served)
    handler = functools.partial(_Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        run(["repo", "index", str(served), "--url", url], home)
        cache = home / "cache" / "repository"
        cache.mkdir(parents=True)
        shutil.copy(served / "index.yaml", cache / "jupyterhub-index.yaml")
        config = home / "config"
        config.mkdir(parents=True)
        (config / "repositories.yaml").write_text(yaml.safe_dump({
            "apiVersion": "", "generated": "0001-01-01T00:00:00Z",
            "repositories": [{"name": "jupyterhub", "url": Z2JH_REPO_URL}],
        }))
        chart = workdir / "coursehub"
        shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("charts"))
        run(["dependency", "build", "--skip-refresh", str(chart)], home)
    finally:
        server.shutdown()
        server.server_close()
    return chart


def lint(chart: Path, values: list[Path], home: Path) -> str:
    args = ["lint", "--strict", str(chart), "--kube-version", KUBE_VERSION]
    for v in values:
        args += ["-f", str(v)]
    return run(args, home)


def template(chart: Path, values: list[Path], home: Path, namespace: str = "coursehub",
             release: str = "coursehub", kube_version: str = KUBE_VERSION,
             api_versions: tuple[str, ...] = ()) -> list[dict]:
    """Every object `helm template` renders, each annotated with its template path; `api_versions`
    are extra APIs the pretended cluster serves (`.Capabilities.APIVersions`)."""
    args = ["template", release, str(chart), "-n", namespace, "--kube-version", kube_version,
            "--include-crds"]
    for api in api_versions:
        args += ["--api-versions", api]
    for v in values:
        args += ["-f", str(v)]
    out = run(args, home)
    docs = []
    for chunk in out.split("\n---"):
        source = next((line.split(":", 1)[1].strip() for line in chunk.splitlines()
                       if line.startswith("# Source:")), "")
        doc = yaml.safe_load(chunk)
        if isinstance(doc, dict) and doc.get("kind"):
            meta = doc.setdefault("metadata", {})
            meta["annotations"] = {**(meta.get("annotations") or {}), "test/source": source}
            docs.append(doc)
    return docs


def ours(docs: list[dict]) -> list[dict]:
    """The objects of our own templates (not the jupyterhub subchart's)."""
    return [d for d in docs if d["metadata"]["annotations"]["test/source"].startswith("coursehub/templates/")]
