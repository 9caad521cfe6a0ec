"""Settings errors that tell the reader which file, which key and what was expected."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one settings file."""

    file: Path | None
    key: str
    message: str

    def __str__(self) -> str:
        where = str(self.file) if self.file else "<settings>"
        key = self.key or "(top level)"
        return f"{where}: {key}: {self.message}"


class ConfigError(Exception):
    """Raised when settings or course files are invalid; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def key_path(loc: Iterable[Any]) -> str:
    """('assignments', 0, 'due') -> 'assignments[0].due'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _describe(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see the schema in the docs)"
    if kind == "missing":
        return "required key is missing"
    got = err.get("input")
    msg = err.get("msg", "invalid value")
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "literal_error":
        return f"{msg}; got {type(got).__name__} {got!r}"
    return msg.removeprefix("Value error, ")


def problems_from_validation(error: ValidationError, file: Path | None) -> list[Problem]:
    return [Problem(file, key_path(e["loc"]), _describe(e)) for e in error.errors()]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> Any:
    """Read a YAML file; syntax errors and duplicate keys become a ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(path, "", "file not found")]) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(path, "", "file is not UTF-8 text")]) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError([Problem(path, "", f"invalid YAML{where}: {problem}")]) from None


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], data: Any, file: Path | None) -> M:
    """Validate `data` against `model`, turning pydantic errors into a ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, "", f"expected a mapping of keys, got {type(data).__name__}")])
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(problems_from_validation(e, file)) from None
