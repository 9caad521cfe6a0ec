"""Course definitions: `courses/<id>/course.yaml`, validated by a schema, plus the catalog of them all.

A course is data. The same model drives the local spawner, KubeSpawner profiles, the grading
service, LTI context mapping, the textbook build and capacity planning.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from .environments_data import DataSource, source_problems
from .errors import ConfigError, Problem, load_yaml, parse_model
from .groups import CourseRole, course_group

#: Course ids appear in URLs, group names, file paths, Kubernetes labels and database names.
#: The pattern without anchors; `COURSE_ID_ROUTE` is it as one URL-route capture group (tornado).
COURSE_ID_BODY = r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?"
COURSE_ID_PATTERN = rf"^{COURSE_ID_BODY}$"
COURSE_ID_ROUTE = rf"({COURSE_ID_BODY})"
#: Assignment, notebook-free ids: what nbgrader accepts in a folder name, minus anything path-like.
ITEM_ID_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})$"

CourseId = Annotated[str, StringConstraints(pattern=COURSE_ID_PATTERN)]
ItemId = Annotated[str, StringConstraints(pattern=ITEM_ID_PATTERN)]
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")]
RelPath = Annotated[str, StringConstraints(min_length=1)]


_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}  # fmt: skip


def parse_quantity(q: str) -> int:
    """'512Mi' -> bytes, using the Kubernetes quantity suffixes."""
    num = q.rstrip("KMGTi")
    return int(float(num) * _UNITS[q[len(num):]])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _relative(value: str) -> str:
    p = Path(value)
    if p.is_absolute() or ".." in p.parts:
        raise ValueError("must be a path inside the course folder (no leading '/', no '..')")
    return value


class LtiContext(Strict):
    """An LMS course (context) that this coursehub course answers for."""

    deployment_id: str = Field(min_length=1)
    context_id: str = Field(min_length=1)
    #: Which registered platform (its `name` in the platform settings). Required when more than one
    #: platform is registered: an entry without it would match launches from every LMS.
    platform: str | None = None


class Staff(Strict):
    """Staff known ahead of any LMS launch (usernames on the hub, or SSO subjects)."""

    instructors: list[str] = []
    teaching_assistants: list[str] = []


class Environment(Strict):
    """The user server a student of this course gets: local settings and the Kubernetes profile."""

    image: str = "quay.io/jupyter/scipy-notebook:2025-11-24"
    cpu_guarantee: float = Field(0.25, gt=0)
    cpu_limit: float = Field(1.0, gt=0)
    mem_guarantee: Quantity = "512Mi"
    mem_limit: Quantity = "1Gi"
    storage: Quantity = "1Gi"
    default_url: str = "/lab"
    env: dict[str, str] = {}

    @model_validator(mode="after")
    def _limits_cover_guarantees(self) -> Environment:
        if self.cpu_limit < self.cpu_guarantee:
            raise ValueError("cpu_limit must be at least cpu_guarantee")
        if parse_quantity(self.mem_limit) < parse_quantity(self.mem_guarantee):
            raise ValueError("mem_limit must be at least mem_guarantee")
        return self


class Textbook(Strict):
    path: RelPath = "textbook"
    #: The course's git remote at scale; on the local platform coursehub keeps a repository itself.
    repo: str | None = None
    branch: str = "main"
    public: bool = True

    _rel = field_validator("path")(_relative)


class Assignment(Strict):
    id: ItemId
    title: str = ""
    #: The nbgrader source folder, relative to the course folder.
    source: RelPath | None = None
    due: dt.datetime | None = None
    points: float | None = Field(None, ge=0)
    #: Run the visible tests at once on each submission and show the student which pass (never a grade).
    instant_feedback: bool = False

    _rel = field_validator("source")(_relative)

    @field_validator("due")
    @classmethod
    def _aware(cls, v: dt.datetime | None) -> dt.datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("deadline needs a time zone, e.g. 2026-12-01T23:59:00+01:00 or ...Z")
        return v

    @property
    def source_dir(self) -> str:
        return self.source or f"source/{self.id}"


class LatePolicy(Strict):
    grace_minutes: int = Field(0, ge=0)
    penalty_percent_per_day: float = Field(0.0, ge=0, le=100)
    #: After this many days late a submission scores zero; None: no cut-off.
    max_late_days: int | None = Field(None, ge=0)


class Extension(Strict):
    student: str = Field(min_length=1)
    assignment: ItemId
    due: dt.datetime


class Lecture(Strict):
    """A weekly lecture slot: when many students start servers at once."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    start: Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    minutes: int = Field(gt=0, le=600)
    #: Expected share of enrolled students active during the slot.
    attendance: float = Field(0.8, gt=0, le=1)
    timezone: str = "UTC"


class Course(Strict):
    id: CourseId
    title: str = Field(min_length=1)
    description: str = ""
    lti: list[LtiContext] = []
    staff: Staff = Staff()
    environment: Environment = Environment()
    textbook: Textbook | None = None
    assignments: list[Assignment] = []
    late_policy: LatePolicy = LatePolicy()
    extensions: list[Extension] = []
    schedule: list[Lecture] = []
    #: Expected number of students, for capacity planning.
    enrollment: int = Field(0, ge=0)
    #: Shared read-only datasets, mounted at the same path in user servers and the grader's sandbox.
    data: list[DataSource] = []
    #: Show nbgrader's hidden tests in released feedback (nbgrader#1363: they are stripped by default).
    show_hidden_tests_in_feedback: bool = False

    #: Folder the course.yaml was read from (not part of the file).
    folder: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _unique_assignments(self) -> Course:
        seen: set[str] = set()
        for a in self.assignments:
            if a.id in seen:
                raise ValueError(f"assignment id {a.id!r} appears twice")
            seen.add(a.id)
        for e in self.extensions:
            if e.assignment not in seen:
                raise ValueError(f"extension for unknown assignment {e.assignment!r}")
        return self

    def assignment(self, assignment_id: str) -> Assignment | None:
        return next((a for a in self.assignments if a.id == assignment_id), None)

    def group(self, role: CourseRole) -> str:
        """The JupyterHub group holding this course's members of `role`."""
        return course_group(self.id, role)

    def textbook_dir(self) -> Path | None:
        if self.textbook is None or self.folder is None:
            return None
        return self.folder / self.textbook.path

    def due_for(self, assignment_id: str, student: str) -> dt.datetime | None:
        """The deadline that applies to `student`, extensions included."""
        for e in self.extensions:
            if e.assignment == assignment_id and e.student == student:
                return e.due
        a = self.assignment(assignment_id)
        return a.due if a else None


def load_course(folder: Path) -> Course:
    """Read and validate `folder/course.yaml`, including the files it refers to."""
    file = folder / "course.yaml"
    course = parse_model(Course, load_yaml(file), file)
    problems = []
    if course.id != folder.name:
        problems.append(Problem(file, "id", f"must match the folder name {folder.name!r}, got {course.id!r}"))
    for i, a in enumerate(course.assignments):
        src = folder / a.source_dir
        if not src.is_dir():
            problems.append(Problem(file, f"assignments[{i}].source", f"folder {a.source_dir!r} not found"))
        elif not any(src.glob("*.ipynb")):
            problems.append(Problem(file, f"assignments[{i}].source", f"no notebook in {a.source_dir!r}"))
    if course.textbook and not (folder / course.textbook.path).is_dir():
        problems.append(Problem(file, "textbook.path", f"folder {course.textbook.path!r} not found"))
    problems += source_problems(file, folder, course.data)
    if problems:
        raise ConfigError(problems)
    return course.model_copy(update={"folder": folder.resolve()})


class Catalog:
    """All courses of one coursehub, by id, with their LTI context index."""

    def __init__(self, courses: list[Course]):
        self.courses = {c.id: c for c in courses}

    def __iter__(self) -> Iterator[Course]:
        return iter(self.courses.values())

    def __len__(self) -> int:
        return len(self.courses)

    def get(self, course_id: str) -> Course | None:
        return self.courses.get(course_id)

    def digest(self) -> str:
        """A digest of the course definitions (see environments.catalog_digest, which adds the locks)."""
        blob = json.dumps([c.model_dump(mode="json") for c in sorted(self, key=lambda c: c.id)], sort_keys=True)
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    def for_lti_context(self, deployment_id: str, context_id: str, platform: str | None = None,
                        registered: int | None = None) -> Course | None:
        """The course answering for an LMS context launched through `platform`.

        An entry naming the platform wins. An entry without `platform:` only matches when a single
        platform is registered (`registered` is how many are; None: not known). Raises
        AmbiguousLtiContext when the launch could belong to several courses, or to an entry that
        does not say which of several platforms it means.
        """
        explicit, unnamed = set(), set()
        for course in self.courses.values():
            for ctx in course.lti:
                if (ctx.deployment_id, ctx.context_id) != (deployment_id, context_id):
                    continue
                if platform is not None and ctx.platform == platform:
                    explicit.add(course.id)
                elif ctx.platform is None or platform is None:
                    unnamed.add(course.id)
        if len(explicit) == 1:
            return self.courses[next(iter(explicit))]
        if explicit:
            raise AmbiguousLtiContext(sorted(explicit))
        if not unnamed:
            return None
        if len(unnamed) > 1 or (platform is not None and registered is not None and registered > 1):
            raise AmbiguousLtiContext(sorted(unnamed))
        return self.courses[next(iter(unnamed))]


class AmbiguousLtiContext(LookupError):
    """A launch that several course entries (or a platform-less entry among several LMSes) could claim."""

    def __init__(self, course_ids: list[str]):
        super().__init__(", ".join(course_ids))
        self.course_ids = course_ids


def lti_platform_problems(catalog: Catalog, platforms: list[str]) -> list[Problem]:
    """`lti:` entries without `platform:` while several platforms are registered (`coursehub validate`
    and the hub's start report these)."""
    problems = []
    names = set(platforms)
    for course in catalog:
        file = course.folder / "course.yaml" if course.folder else None
        for i, ctx in enumerate(course.lti):
            if ctx.platform is None and len(names) > 1:
                problems.append(Problem(file, f"lti[{i}].platform", "required: several LMS platforms are "
                                        f"registered ({', '.join(sorted(names))}); say which one this LMS "
                                        "course is on"))
    return problems


def load_catalog(courses_dir: Path) -> Catalog:
    """Load every `*/course.yaml` below `courses_dir`; all problems are reported together."""
    if not courses_dir.is_dir():
        raise ConfigError([Problem(courses_dir, "", "courses folder not found")])
    courses: list[Course] = []
    problems: list[Problem] = []
    for folder in sorted(p for p in courses_dir.iterdir() if (p / "course.yaml").is_file()):
        try:
            courses.append(load_course(folder))
        except ConfigError as e:
            problems.extend(e.problems)
    problems.extend(_cross_course_problems(courses))
    if problems:
        raise ConfigError(problems)
    return Catalog(courses)


def _cross_course_problems(courses: list[Course]) -> list[Problem]:
    problems = []
    seen_ids: dict[str, Path | None] = {}
    seen_ctx: dict[tuple[str | None, str, str], str] = {}
    by_pair: dict[tuple[str, str], set[str]] = {}
    for c in courses:
        for ctx in c.lti:
            by_pair.setdefault((ctx.deployment_id, ctx.context_id), set()).add(c.id)
    for c in courses:
        file = c.folder / "course.yaml" if c.folder else None
        for i, ctx in enumerate(c.lti):
            others = by_pair[(ctx.deployment_id, ctx.context_id)] - {c.id}
            if ctx.platform is None and others:
                problems.append(Problem(file, f"lti[{i}]", "this LMS context is also listed by course "
                                        f"{sorted(others)[0]!r}; add `platform:` to say which LMS each means"))
        if c.id in seen_ids:
            problems.append(Problem(file, "id", f"course id {c.id!r} is also used by {seen_ids[c.id]}"))
        seen_ids[c.id] = file
        for i, ctx in enumerate(c.lti):
            k = (ctx.platform, ctx.deployment_id, ctx.context_id)
            if k in seen_ctx and seen_ctx[k] != c.id:
                problems.append(Problem(file, f"lti[{i}]", f"LMS context already claimed by course {seen_ctx[k]!r}"))
            seen_ctx[k] = c.id
    return problems
