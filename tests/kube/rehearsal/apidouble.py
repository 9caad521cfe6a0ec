"""A test double of the Kubernetes API for the deployment rehearsal: HTTPS, bearer tokens per
service account, the RBAC the chart renders (Roles, ClusterRoles and their bindings, enforced for
every request), and a store that keeps every object created, with list, label/field selectors and
watches (what KubeSpawner's reflectors and the autograde executor use).

Controllers are callbacks: `on_create`/`on_delete` hooks let the kubelet and Job controller doubles
(kubelet.py) run pods and report their status through `set_status`.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import secrets
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

KINDS = {
    "pods": "Pod", "persistentvolumeclaims": "PersistentVolumeClaim", "services": "Service", "secrets": "Secret",
    "configmaps": "ConfigMap", "events": "Event", "serviceaccounts": "ServiceAccount", "jobs": "Job",
    "networkpolicies": "NetworkPolicy", "deployments": "Deployment", "statefulsets": "StatefulSet",
    "roles": "Role", "rolebindings": "RoleBinding", "clusterroles": "ClusterRole",
    "clusterrolebindings": "ClusterRoleBinding", "namespaces": "Namespace", "resourcequotas": "ResourceQuota",
    "limitranges": "LimitRange", "poddisruptionbudgets": "PodDisruptionBudget", "cronjobs": "CronJob",
    "priorityclasses": "PriorityClass", "daemonsets": "DaemonSet",
}
RESOURCES = {kind: res for res, kind in KINDS.items()}
GROUPS = {"Job": "batch", "CronJob": "batch", "NetworkPolicy": "networking.k8s.io", "Deployment": "apps",
          "StatefulSet": "apps", "DaemonSet": "apps", "PodDisruptionBudget": "policy",
          "PriorityClass": "scheduling.k8s.io"} | {
    k: "rbac.authorization.k8s.io" for k in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")}
CLUSTER_SCOPED = {"namespaces", "clusterroles", "clusterrolebindings", "priorityclasses"}


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Request:
    """One API call as RBAC sees it."""

    verb: str
    group: str
    resource: str
    namespace: str
    name: str
    subresource: str = ""

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclass
class Audit:
    user: str
    request: Request
    allowed: bool
    code: int = 0


def match_labels(labels: dict, selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def match_fields(obj: dict, selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        k, _, v = term.partition("=")
        node = obj
        for part in k.rstrip("=").split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if str(node if node is not None else "") != v:
            return False
    return True


class Store:
    """Objects by (resource, namespace, name), a resourceVersion counter and an event log."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.events: list[tuple[int, str, tuple[str, str, str], dict]] = []
        self.cond = threading.Condition()
        self.rv = itertools.count(1)
        self.on_create: list[Callable[[str, dict], None]] = []
        self.on_delete: list[Callable[[str, dict], None]] = []
        self.closed = False

    def _record(self, kind: str, key: tuple[str, str, str], obj: dict) -> None:
        rv = next(self.rv)
        obj["metadata"]["resourceVersion"] = str(rv)
        self.events.append((rv, kind, key, copy.deepcopy(obj)))
        self.cond.notify_all()

    def create(self, resource: str, namespace: str, obj: dict, *, hooks: bool = True) -> dict:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if resource not in CLUSTER_SCOPED:
            meta["namespace"] = namespace
        obj.setdefault("kind", KINDS.get(resource, resource))
        key = (resource, namespace if resource not in CLUSTER_SCOPED else "", meta["name"])
        with self.cond:
            if key in self.objects:
                raise KeyError(key)
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now())
            if resource == "pods":
                obj.setdefault("status", {"phase": "Pending"})
            if resource == "persistentvolumeclaims":
                obj["status"] = {"phase": "Bound"}
            if resource == "jobs":
                obj.setdefault("status", {})
            self.objects[key] = obj
            self._record("ADDED", key, obj)
        if hooks:
            for hook in self.on_create:
                hook(resource, copy.deepcopy(obj))
        return copy.deepcopy(obj)

    def get(self, resource: str, namespace: str, name: str) -> dict | None:
        with self.cond:
            obj = self.objects.get((resource, namespace if resource not in CLUSTER_SCOPED else "", name))
            return copy.deepcopy(obj) if obj else None

    def list(self, resource: str, namespace: str | None, labels: str = "", fields: str = "") -> list[dict]:
        with self.cond:
            return [copy.deepcopy(o) for (r, ns, _), o in sorted(self.objects.items())
                    if r == resource and (namespace is None or ns == namespace)
                    and match_labels(o["metadata"].get("labels") or {}, labels) and match_fields(o, fields)]

    def set_status(self, resource: str, namespace: str, name: str, status: dict) -> None:
        with self.cond:
            obj = self.objects.get((resource, namespace, name))
            if obj is None:
                return
            obj["status"] = {**(obj.get("status") or {}), **status}
            self._record("MODIFIED", (resource, namespace, name), obj)

    def delete(self, resource: str, namespace: str, name: str) -> dict | None:
        key = (resource, namespace if resource not in CLUSTER_SCOPED else "", name)
        with self.cond:
            obj = self.objects.pop(key, None)
            if obj is not None:
                self._record("DELETED", key, obj)
        if obj is not None:
            for hook in self.on_delete:
                hook(resource, copy.deepcopy(obj))
        return obj

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class Rbac:
    """Authorizes a service account's request with the Roles/ClusterRoles and bindings in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def _rule_allows(rule: dict, req: Request) -> bool:
        def hit(values: list[str] | None, value: str) -> bool:
            return bool(values) and ("*" in values or value in values)

        if not hit(rule.get("apiGroups"), req.group) or not hit(rule.get("resources"), req.full_resource):
            return False
        if not hit(rule.get("verbs"), req.verb):
            return False
        names = rule.get("resourceNames")
        return not names or req.name in names

    def _bound(self, binding: dict, ns: str, sa: str) -> bool:
        return any(s.get("kind") == "ServiceAccount" and s.get("name") == sa and s.get("namespace", "") == ns
                   for s in binding.get("subjects") or [])

    def allowed(self, user: tuple[str, str], req: Request) -> bool:
        ns, sa = user
        roles: list[dict] = []
        if req.namespace:
            for b in self.store.list("rolebindings", req.namespace):
                if self._bound(b, ns, sa):
                    ref = b["roleRef"]
                    res = "roles" if ref["kind"] == "Role" else "clusterroles"
                    role = self.store.get(res, req.namespace if res == "roles" else "", ref["name"])
                    roles += [role] if role else []
        for b in self.store.list("clusterrolebindings", None):
            if self._bound(b, ns, sa):
                role = self.store.get("clusterroles", "", b["roleRef"]["name"])
                roles += [role] if role else []
        return any(self._rule_allows(rule, req) for role in roles for rule in role.get("rules") or [])


class ApiDouble:
    """The HTTPS server. `tokens` maps bearer tokens to (namespace, service account)."""

    def __init__(self, store: Store, cert: str, key: str, host: str = "127.0.0.1", port: int = 6443) -> None:
        self.store = store
        self.rbac = Rbac(store)
        self.tokens: dict[str, tuple[str, str]] = {}
        self.audit: list[Audit] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # noqa: D102
                pass

            def do_GET(self) -> None:  # noqa: N802
                api.handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                api.handle(self, "POST")

            def do_DELETE(self) -> None:  # noqa: N802
                api.handle(self, "DELETE")

            def do_PUT(self) -> None:  # noqa: N802
                api.handle(self, "PUT")

            def do_PATCH(self) -> None:  # noqa: N802
                api.handle(self, "PATCH")

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.store.close()
        self.server.shutdown()
        self.server.server_close()

    def issue_token(self, namespace: str, service_account: str) -> str:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = (namespace, service_account)
        return token

    # ---- requests -------------------------------------------------------------------------

    @staticmethod
    def parse(method: str, path: str, query: dict) -> Request | None:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[3:]
        else:
            return None
        namespace = ""
        if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
            namespace, rest = rest[1], rest[2:]
        if not rest:
            return None
        resource, name, sub = rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
        watch = query.get("watch", [""])[0].lower() in ("true", "1")
        verb = {"GET": "watch" if watch else ("get" if name else "list"), "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}[method]
        return Request(verb, group, resource, namespace, name, sub)

    def _send(self, h: BaseHTTPRequestHandler, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _status(self, h, code: int, reason: str, message: str) -> None:
        self._send(h, code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                             "message": message, "reason": reason, "code": code})

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        query = parse_qs(url.query)
        body = b""
        if int(h.headers.get("Content-Length") or 0):
            body = h.rfile.read(int(h.headers["Content-Length"]))
        if url.path in ("/version", "/version/"):
            self._send(h, 200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
            return
        scheme, _, token = h.headers.get("Authorization", "").partition(" ")
        user = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        req = self.parse(method, url.path, query)
        if user is None:
            self._status(h, 401, "Unauthorized", "Unauthorized")
            return
        if req is None:
            self._status(h, 404, "NotFound", f"the double does not serve {url.path}")
            return
        allowed = self.rbac.allowed(user, req)
        entry = Audit(f"system:serviceaccount:{user[0]}:{user[1]}", req, allowed)
        self.audit.append(entry)
        if not allowed:
            entry.code = 403
            self._status(h, 403, "Forbidden",
                         f'{req.resource} is forbidden: User "{entry.user}" cannot {req.verb} resource '
                         f'"{req.full_resource}" in API group "{req.group}" in the namespace "{req.namespace}"')
            return
        entry.code = self.serve(h, method, req, query, body)

    def serve(self, h, method: str, req: Request, query: dict, body: bytes) -> int:
        store, res, ns = self.store, req.resource, req.namespace
        labels = query.get("labelSelector", [""])[0]
        fields = query.get("fieldSelector", [""])[0]
        if req.subresource == "status" and method == "GET":
            req = Request("get", req.group, res, ns, req.name)
        if req.subresource == "log":
            self._status(h, 404, "NotFound", "logs are not kept by the double")
            return 404
        if req.verb == "watch":
            self.watch(h, res, ns or None, labels, fields, query)
            return 200
        if req.verb == "list":
            items = store.list(res, ns or None, labels, fields)
            rv = str(store.events[-1][0]) if store.events else "0"
            self._send(h, 200, {"kind": KINDS.get(res, res) + "List", "apiVersion": "v1",
                                "metadata": {"resourceVersion": rv}, "items": items})
            return 200
        if req.verb == "get":
            obj = store.get(res, ns, req.name)
            if obj is None:
                self._status(h, 404, "NotFound", f'{res} "{req.name}" not found')
                return 404
            self._send(h, 200, obj)
            return 200
        if req.verb == "create":
            try:
                obj = store.create(res, ns, json.loads(body or b"{}"))
            except KeyError:
                self._status(h, 409, "AlreadyExists", f'{res} already exists')
                return 409
            self._send(h, 201, obj)
            return 201
        if req.verb == "delete":
            obj = store.delete(res, ns, req.name)
            if obj is None:
                self._status(h, 404, "NotFound", f'{res} "{req.name}" not found')
                return 404
            self._send(h, 200, {"kind": "Status", "apiVersion": "v1", "status": "Success",
                                "details": {"name": req.name, "kind": res}})
            return 200
        self._status(h, 405, "MethodNotAllowed", f"the double does not {req.verb} {res}")
        return 405

    def watch(self, h, res: str, ns: str | None, labels: str, fields: str, query: dict) -> None:
        """Newline-delimited JSON events, chunked, until timeoutSeconds or shutdown."""
        import time

        since = int(query.get("resourceVersion", ["0"])[0] or 0)
        timeout = float(query.get("timeoutSeconds", ["60"])[0] or 60)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def chunk(data: bytes) -> None:
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            h.wfile.flush()

        def matches(r: str, key_ns: str, obj: dict) -> bool:
            return r == res and (ns is None or key_ns == ns) and match_labels(
                obj["metadata"].get("labels") or {}, labels) and match_fields(obj, fields)

        end = time.monotonic() + timeout
        try:
            if not since:
                with self.store.cond:
                    current = self.store.list(res, ns, labels, fields)
                    since = self.store.events[-1][0] if self.store.events else 0
                for obj in current:
                    chunk(json.dumps({"type": "ADDED", "object": obj}).encode() + b"\n")
            while not self.store.closed and time.monotonic() < end:
                with self.store.cond:
                    fresh = [e for e in self.store.events if e[0] > since]
                    if not fresh:
                        self.store.cond.wait(min(1.0, max(0.05, end - time.monotonic())))
                        fresh = [e for e in self.store.events if e[0] > since]
                for rv, kind, (r, key_ns, _), obj in fresh:
                    if matches(r, key_ns, obj):
                        chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
                    since = rv
            chunk(b"")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        h.close_connection = True
