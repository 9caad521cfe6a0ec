"""Shared, read-only course data (`course.yaml` `data:`): large datasets every student's server and
the grader's sandbox see at the same absolute path, never writable by students (as DataHub does).

`courses.Course` holds these as `data: list[DataSource]` (checked when the catalog loads);
`course_data` reads the `data:` key of one course.yaml on its own, for callers without the catalog.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError, Problem, load_yaml, problems_from_validation

#: Where data appears by default: /srv/data/<name>, outside every home and workspace.
DATA_ROOT = PurePosixPath("/srv/data")
#: Mount paths must be below one of these (never over the system, a home or the sandbox workspace).
MOUNT_ROOTS = (PurePosixPath("/srv"), PurePosixPath("/mnt"), PurePosixPath("/data"))

DataName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9_-]{0,62})$")]


class VolumeRef(BaseModel):
    """A Kubernetes volume claim holding the data (too large for the course folder)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    claim: str = Field(min_length=1)
    sub_path: str = ""


class DataSource(BaseModel):
    """One dataset: a folder in the course (`path`) or a volume claim (`volume`), mounted read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: DataName
    path: str | None = None
    volume: VolumeRef | None = None
    mount: str | None = None
    description: str = ""

    @field_validator("path")
    @classmethod
    def _inside(cls, v: str | None) -> str | None:
        if v is not None and (PurePosixPath(v).is_absolute() or ".." in PurePosixPath(v).parts or not v.strip()):
            raise ValueError("must be a folder inside the course folder (no leading '/', no '..')")
        return v

    @field_validator("mount")
    @classmethod
    def _mount(cls, v: str | None) -> str | None:
        if v is None:
            return v
        p = PurePosixPath(v)
        if not p.is_absolute() or ".." in p.parts or not any(r in p.parents for r in MOUNT_ROOTS):
            raise ValueError(f"must be an absolute path below {', '.join(map(str, MOUNT_ROOTS))}, e.g. /srv/data/census")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> DataSource:
        if (self.path is None) == (self.volume is None):
            raise ValueError("give exactly one of 'path' (a folder in the course) or 'volume' (a volume claim)")
        return self

    @property
    def mount_path(self) -> PurePosixPath:
        return PurePosixPath(self.mount) if self.mount else DATA_ROOT / self.name


def volume_name(index: int, source: DataSource) -> str:
    """The pod volume name of the course's `index`-th dataset (a DNS label: unique, <= 63 chars), the
    same in user pods and grading Jobs."""
    return f"data-{index}-{source.name.replace('_', '-')}"[:63].rstrip("-")


def course_data(course_folder: Path) -> list[DataSource]:
    """The course's `data:` entries, validated (ConfigError names course.yaml and the key)."""
    file = course_folder / "course.yaml"
    raw = load_yaml(file) or {}
    entries = raw.get("data") if isinstance(raw, dict) else None
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ConfigError([Problem(file, "data", f"expected a list of datasets, got {type(entries).__name__}")])
    out, problems = [], []
    for i, entry in enumerate(entries):
        try:
            out.append(DataSource.model_validate(entry))
        except ValidationError as e:
            problems += [Problem(file, f"data[{i}]" + (f".{p.key}" if p.key else ""), p.message)
                         for p in problems_from_validation(e, file)]
    if problems:
        raise ConfigError(problems)
    return out


def data_problems(course_folder: Path) -> list[Problem]:
    """Schema errors, missing folders and clashing names or mount paths, for `coursehub validate`."""
    try:
        sources = course_data(course_folder)
    except ConfigError as e:
        return e.problems
    return source_problems(course_folder / "course.yaml", course_folder, sources)


def source_problems(file: Path, course_folder: Path, sources: list[DataSource]) -> list[Problem]:
    """Missing folders and clashing names or mount paths of validated `data:` entries."""
    problems, names, mounts = [], set(), set()
    for i, d in enumerate(sources):
        if d.path is not None and not (course_folder / d.path).is_dir():
            problems.append(Problem(file, f"data[{i}].path", f"folder {d.path!r} not found in the course folder"))
        if d.name in names:
            problems.append(Problem(file, f"data[{i}].name", f"dataset name {d.name!r} appears twice"))
        if d.mount_path in mounts or any(d.mount_path in m.parents or m in d.mount_path.parents for m in mounts):
            problems.append(Problem(file, f"data[{i}].mount", f"{d.mount_path} overlaps another dataset's mount"))
        names.add(d.name)
        mounts.add(d.mount_path)
    return problems


def data_mounts(course_folder: Path) -> list[tuple[Path, PurePosixPath]]:
    """(host folder, mount path) for each folder dataset, for read-only binds in the local user server
    and the autograde sandbox. Volume datasets are Kubernetes-only (helm-values mounts the claim)."""
    folder = course_folder.resolve()
    out = []
    for d in course_data(course_folder):
        if d.path is None:
            continue
        host = (folder / d.path).resolve()
        if folder not in host.parents:  # a symlink pointing out of the course
            raise ConfigError([Problem(course_folder / "course.yaml", "data", f"{d.path!r} leaves the course folder")])
        out.append((host, d.mount_path))
    return out
