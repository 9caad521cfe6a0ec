"""A small renderer for the subset of Helm's Go templates that helm/coursehub uses, so the chart's
objects can be rendered and checked against the Kubernetes schema where no `helm` binary exists.

Supported: text with `{{ }}` actions and `{{-`/`-}}` trimming, comments, `define`/`include`,
`if`/`else if`/`else`, `with`, `range` over lists, pipelines, parentheses, `.`/`$` field chains,
string/number/bool literals, and the functions in FUNCS. Anything else raises TemplateError, so
a template using more than this subset fails loudly instead of rendering wrong. When `helm` is on
PATH, tests/kube/test_chart.py also checks that Helm renders the same objects.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class TemplateError(Exception):
    pass


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


@dataclass
class Node:
    kind: str  # text | action | if | with | range | define
    text: str = ""
    branches: list[tuple[str | None, list[Node]]] = field(default_factory=list)  # (condition, body)


def _tokens(source: str, name: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    for m in _ACTION.finditer(source):
        text = source[pos:m.start()]
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        if out and out[-1][0] == "trim-right":
            out.pop()
            text = text.lstrip(" \t\r\n")
        out.append(("text", text))
        out.append(("action", m.group(2).strip()))
        if m.group(3):
            out.append(("trim-right", ""))
        pos = m.end()
    tail = source[pos:]
    if out and out[-1][0] == "trim-right":
        out.pop()
        tail = tail.lstrip(" \t\r\n")
    out.append(("text", tail))
    if "{{" in tail or "}}" in tail:
        raise TemplateError(f"{name}: unbalanced '{{{{' or '}}}}'")
    return out


def parse(source: str, name: str = "<template>") -> tuple[list[Node], dict[str, list[Node]]]:
    """Parse a template into nodes; returns (body, defines)."""
    defines: dict[str, list[Node]] = {}
    root: list[Node] = []
    stack: list[tuple[Node | None, list[Node]]] = [(None, root)]
    for kind, value in _tokens(source, name):
        body = stack[-1][1]
        if kind == "text":
            if value:
                body.append(Node("text", value))
            continue
        if value.startswith("/*"):
            if not value.endswith("*/"):
                raise TemplateError(f"{name}: unterminated comment")
            continue
        word, _, rest = value.partition(" ")
        if word in ("if", "with", "range", "define"):
            node = Node(word)
            node.branches.append((rest.strip(), []))
            body.append(node)
            stack.append((node, node.branches[-1][1]))
        elif word == "else":
            node = stack[-1][0]
            if node is None or node.kind not in ("if", "with", "range"):
                raise TemplateError(f"{name}: 'else' outside if/with/range")
            cond = rest.strip()
            if cond.startswith("if "):
                cond = cond[3:].strip()
            elif cond:
                raise TemplateError(f"{name}: unsupported else form {value!r}")
            node.branches.append((cond or None, []))
            stack[-1] = (node, node.branches[-1][1])
        elif word == "end":
            if len(stack) == 1:
                raise TemplateError(f"{name}: 'end' without a block")
            node, _ = stack.pop()
            if node.kind == "define":
                body_parent = stack[-1][1]
                body_parent.remove(node)
                defines[json.loads(node.branches[0][0])] = node.branches[0][1]
        else:
            body.append(Node("action", value))
    if len(stack) != 1:
        raise TemplateError(f"{name}: missing {{{{ end }}}} for {stack[-1][0].kind}")
    return root, defines


# ---- expressions ---------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>[()|])'
                    r"|(?P<assign>:=)|(?P<word>[$.A-Za-z_][$.\w-]*))")


def _lex(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        if expr[pos:].strip() == "":
            break
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"cannot parse {expr!r} at {expr[pos:]!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def truthy(v: Any) -> bool:
    return not (v is None or v is False or v == 0 or v == "" or v == [] or v == {})


class _GoStyleDumper(yaml.SafeDumper):
    """Helm's toYaml goes through JSON and Go's YAML encoder: quoted scalars use double quotes."""

    def choose_scalar_style(self):
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def _json_numbers(v: Any) -> Any:
    """Integral floats print as integers after Helm's JSON round trip (8.0 -> 8)."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {k: _json_numbers(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_numbers(x) for x in v]
    return v


def to_yaml(v: Any) -> str:
    return yaml.dump(_json_numbers(v), Dumper=_GoStyleDumper, sort_keys=True, default_flow_style=False,
                     width=10**9, allow_unicode=True).rstrip("\n")


def go_str(v: Any) -> str:
    if v is None:
        return ""
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dict | list):
        raise TemplateError(f"printing a map/list directly ({v!r}); use toYaml")
    return str(v)


def _printf(fmt: str, *args: Any) -> str:
    parts = iter(args)
    return re.sub(r"%[sdv]", lambda m: go_str(next(parts)), fmt)


def _indent(n: int, s: str) -> str:
    """Go's indent: every line, empty ones too, gets the padding."""
    return "\n".join(" " * n + line for line in go_str(s).split("\n"))


FUNCS = {
    "toYaml": to_yaml,
    "nindent": lambda n, s: "\n" + _indent(n, s),
    "indent": _indent,
    "quote": lambda *v: " ".join(json.dumps(go_str(x)) for x in v),
    "default": lambda d, v=None: v if truthy(v) else d,
    "printf": _printf,
    "print": lambda *v: "".join(go_str(x) for x in v),
    "sha256sum": lambda s: hashlib.sha256(go_str(s).encode()).hexdigest(),
    "int": lambda v: int(v or 0),
    "and": lambda *v: next((x for x in v if not truthy(x)), v[-1]),
    "or": lambda *v: next((x for x in v if truthy(x)), v[-1]),
    "not": lambda v: not truthy(v),
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "trunc": lambda n, s: go_str(s)[:n],
    "trimSuffix": lambda suf, s: s[: -len(suf)] if suf and s.endswith(suf) else s,
    "required": lambda msg, v: v if truthy(v) else (_ for _ in ()).throw(TemplateError(msg)),
}


class Renderer:
    def __init__(self, defines: dict[str, list[Node]]):
        self.defines = defines

    # expression evaluation: pipelines of commands
    def eval(self, expr: str, dot: Any, root: Any, variables: dict[str, Any]) -> Any:
        tokens = _lex(expr)
        value, rest = self._pipeline(tokens, dot, root, variables)
        if rest:
            raise TemplateError(f"unexpected {rest[0][1]!r} in {expr!r}")
        return value

    def _pipeline(self, tokens, dot, root, variables):
        value, tokens = self._command(tokens, dot, root, variables, piped=None, has_pipe=False)
        while tokens and tokens[0] == ("op", "|"):
            value, tokens = self._command(tokens[1:], dot, root, variables, piped=value, has_pipe=True)
        return value, tokens

    def _command(self, tokens, dot, root, variables, piped, has_pipe):
        args: list[Any] = []
        func = None
        while tokens and tokens[0] not in (("op", "|"), ("op", ")")):
            kind, text = tokens[0]
            if kind == "word" and not text.startswith((".", "$")) and text not in ("true", "false", "nil"):
                if args or func:
                    raise TemplateError(f"function {text!r} used as an argument; wrap it in ()")
                if text not in FUNCS and text != "include":
                    raise TemplateError(f"unsupported function {text!r}")
                func = text
                tokens = tokens[1:]
                continue
            arg, tokens = self._operand(tokens, dot, root, variables)
            args.append(arg)
        if has_pipe:
            args.append(piped)
        if func is None:
            if len(args) != 1:
                raise TemplateError(f"expected one value, got {len(args)}")
            return args[0], tokens
        if func == "include":
            name, data = args
            return self.include(name, data), tokens
        return FUNCS[func](*args), tokens

    def _operand(self, tokens, dot, root, variables):
        kind, text = tokens[0]
        if kind == "op" and text == "(":
            value, rest = self._pipeline(tokens[1:], dot, root, variables)
            if not rest or rest[0] != ("op", ")"):
                raise TemplateError("missing ')'")
            return value, rest[1:]
        if kind == "str":
            return json.loads(text), tokens[1:]
        if kind == "num":
            return (float(text) if "." in text else int(text)), tokens[1:]
        if kind == "word":
            if text in ("true", "false"):
                return text == "true", tokens[1:]
            if text == "nil":
                return None, tokens[1:]
            return self._field(text, dot, root, variables), tokens[1:]
        raise TemplateError(f"unexpected {text!r}")

    @staticmethod
    def _field(chain: str, dot, root, variables):
        if chain == ".":
            return dot
        if chain.startswith("$"):
            head, _, tail = chain.partition(".")
            base = root if head == "$" else variables[head]
            parts = tail.split(".") if tail else []
        else:
            base, parts = dot, chain[1:].split(".")
        for p in parts:
            if base is None:
                return None
            if not isinstance(base, dict):
                raise TemplateError(f"cannot read {p!r} of {base!r} in {chain}")
            base = base.get(p)
        return base

    def include(self, name: str, data: Any) -> str:
        if name not in self.defines:
            raise TemplateError(f"no template named {name!r}")
        return self.render_nodes(self.defines[name], data, data if isinstance(data, dict) else {}, {})

    def render_nodes(self, nodes: list[Node], dot, root, variables) -> str:
        out: list[str] = []
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "action":
                out.append(go_str(self.eval(node.text, dot, root, variables)))
            elif node.kind == "if":
                for cond, body in node.branches:
                    if cond is None or truthy(self.eval(cond, dot, root, variables)):
                        out.append(self.render_nodes(body, dot, root, variables))
                        break
            elif node.kind == "with":
                (cond, body), *rest = node.branches
                value = self.eval(cond, dot, root, variables)
                if truthy(value):
                    out.append(self.render_nodes(body, value, root, variables))
                elif rest:
                    out.append(self.render_nodes(rest[0][1], dot, root, variables))
            elif node.kind == "range":
                (cond, body), *rest = node.branches
                items = self.eval(cond, dot, root, variables)
                if not isinstance(items, list | type(None)):
                    raise TemplateError("range supports lists only")
                for item in items or []:
                    out.append(self.render_nodes(body, item, root, variables))
                if not items and rest:
                    out.append(self.render_nodes(rest[0][1], dot, root, variables))
        return "".join(out)


def render_chart(chart_dir: Path, values: dict[str, Any], *, release: str = "coursehub",
                 namespace: str = "coursehub") -> dict[str, str]:
    """Render every template of the chart: {relative path: text}. `values` are already merged."""
    chart = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    templates = sorted((chart_dir / "templates").rglob("*"))
    defines: dict[str, list[Node]] = {}
    bodies: dict[str, list[Node]] = {}
    for path in templates:
        if path.is_dir():
            continue
        rel = str(path.relative_to(chart_dir))
        body, found = parse(path.read_text(), rel)
        defines.update(found)
        if not path.name.startswith("_"):
            bodies[rel] = body
    root = {
        "Values": values,
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm", "IsInstall": True},
        "Chart": {"Name": chart["name"], "Version": chart["version"], "AppVersion": chart.get("appVersion")},
        "Template": {"BasePath": f"{chart['name']}/templates"},
    }
    renderer = Renderer(defines)
    return {rel: renderer.render_nodes(body, root, root, {}) for rel, body in bodies.items()}
