"""Exchange test helpers: actors running the stock nbgrader apps against either exchange backend.

`FilesystemBackend` is nbgrader's default exchange (a shared folder; identity is what --student
says); `CoursehubBackend` is the grading service (identity from the hub token). An `Actor` is an
instructor (in the course directory) or a student (in their home) running nbgrader there.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import yaml
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange import ExchangeFactory
from nbgrader.tests import run_nbgrader
from traitlets.config import Config

from coursehub.grading.exchange import FACTORY_CLASSES

from .grading import GradingService

COURSE = "abc101"
OTHER = "xyz202"
STAFF = ("inst", "ta1", "prof2")


def make_notebook(text: str = "print('hello')", pad: int = 0) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Problem"), nbformat.v4.new_code_cell(text)]
    if pad:
        nb.cells.append(nbformat.v4.new_raw_cell("x" * pad))
    return nbformat.writes(nb)


def write_course(root: Path, course_id: str, staff: dict, assignments: list[dict], **extra: object) -> None:
    folder = root / course_id
    for a in assignments:
        src = folder / "source" / a["id"]
        src.mkdir(parents=True, exist_ok=True)
        (src / "p1.ipynb").write_text(make_notebook())
    data = {"id": course_id, "title": f"Course {course_id}", "staff": staff, "assignments": assignments, **extra}
    (folder / "course.yaml").write_text(yaml.safe_dump(data, default_flow_style=False))


def make_courses(root: Path) -> Path:
    """Two test courses: abc101 (no deadlines) and xyz202 (deadline passed, an extension for bob)."""
    write_course(root, COURSE, {"instructors": ["inst"], "teaching_assistants": ["ta1"]}, [{"id": "ps1"}, {"id": "ps2"}])
    write_course(
        root, OTHER, {"instructors": ["prof2"]},
        [{"id": "hw1", "due": "2020-01-01T00:00:00+00:00"}],
        late_policy={"grace_minutes": 10},
        extensions=[{"student": "bob", "assignment": "hw1", "due": "2099-01-01T00:00:00+00:00"}],
    )
    return root


# Hub groups: the only source of course roles.
MEMBERS = {
    "inst": [f"course:{COURSE}:instructor", f"course:{OTHER}:student"],
    "ta1": [f"course:{COURSE}:ta"],
    "prof2": [f"course:{OTHER}:instructor"],
    "alice": [f"course:{COURSE}:student", f"course:{OTHER}:student"],
    "bob": [f"course:{COURSE}:student", f"course:{OTHER}:student"],
    "mallory": [f"course:{COURSE}:student"],
    "outsider": [],
}


class Actor:
    """Someone running nbgrader in their own folder (an instructor in the course directory)."""

    def __init__(self, backend: Backend, name: str, home: Path, course: str = COURSE):
        self.backend, self.name, self.home, self.course = backend, name, home, course
        home.mkdir(parents=True, exist_ok=True)

    def nbgrader(self, *args: str, retcode: int = 0) -> str:
        cwd = os.getcwd()
        os.chdir(self.home)
        try:
            return run_nbgrader([*args, "--course", self.course, *self.backend.args(self)], retcode=retcode,
                                env={**os.environ, **self.backend.env(self)})
        finally:
            os.chdir(cwd)

    def config(self, assignment: str | None = None, **sections: dict) -> Config:
        cfg = Config(self.backend.config(self))
        cfg.CourseDirectory.course_id = self.course
        if assignment:
            cfg.CourseDirectory.assignment_id = assignment
        cfg.CourseDirectory.root = str(self.home)
        for section, values in sections.items():
            for k, v in values.items():
                setattr(cfg[section], k, v)
        return cfg

    def list(self, assignment: str | None = None, **traits: object) -> list[dict]:
        """What the Assignments panel gets: ExchangeFactory.List(...).start() in the user's folder."""
        cwd = os.getcwd()
        old_env = dict(os.environ)
        os.environ.update(self.backend.env(self))
        os.chdir(self.home)
        try:
            cfg = self.config(assignment, ExchangeList=traits)
            lister = ExchangeFactory(config=cfg).List(
                coursedir=CourseDirectory(config=cfg), authenticator=Authenticator(config=cfg), config=cfg)
            return lister.start()
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(old_env)


class Backend:
    name = ""

    def __init__(self, tmp: Path):
        self.tmp = tmp

    def actor(self, name: str, course: str = COURSE) -> Actor:
        home = self.tmp / "course" if name in STAFF else self.tmp / "homes" / name
        return Actor(self, name, home, course)

    def args(self, actor: Actor) -> list[str]:
        return [f"--{section}.{key}={value}" for section, values in self.config(actor).items()
                for key, value in values.items()]

    def config(self, actor: Actor) -> dict:
        raise NotImplementedError

    def env(self, actor: Actor) -> dict:
        return {}


class FilesystemBackend(Backend):
    """nbgrader's default exchange: a shared folder; identity is whatever --student says."""

    name = "filesystem"

    def __init__(self, tmp: Path):
        super().__init__(tmp)
        root = tmp / "exchange"
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o777)  # as an administrator sets it up

    def config(self, actor: Actor) -> dict:
        cfg = {"Exchange": {"root": str(self.tmp / "exchange"), "cache": str(self.tmp / "cache" / actor.name)}}
        if actor.home.parent.name == "homes":
            cfg["CourseDirectory"] = {"student_id": actor.name}
        return cfg


class CoursehubBackend(Backend):
    """coursehub's exchange: the grading service; identity is the hub token."""

    name = "coursehub"

    def __init__(self, tmp: Path, service: GradingService, tokens: dict[str, str]):
        super().__init__(tmp)
        self.service, self.tokens = service, tokens

    def config(self, actor: Actor) -> dict:
        return {"ExchangeFactory": dict(FACTORY_CLASSES), "CoursehubExchange": {"service_url": self.service.url}}

    def args(self, actor: Actor) -> list[str]:
        return [f"--ExchangeFactory.{k}={v}" for k, v in FACTORY_CLASSES.items()] + [
            f"--CoursehubExchange.service_url={self.service.url}"]

    def env(self, actor: Actor) -> dict:
        return {"JUPYTERHUB_API_TOKEN": self.tokens[actor.name]}



def prepare_release(instructor: Actor, assignment: str = "ps1", text: str = "x = 1") -> None:
    """An instructor's course directory with `release/<assignment>/p1.ipynb` (as generate_assignment leaves it)."""
    rel = instructor.home / "release" / assignment
    rel.mkdir(parents=True, exist_ok=True)
    (rel / "p1.ipynb").write_text(make_notebook(text))


def write_feedback(instructor: Actor, student: str, assignment: str, html: str) -> None:
    """What `nbgrader generate_feedback` leaves: feedback/<student>/<a>/p1.html plus timestamp and secret."""
    sub = instructor.home / "submitted" / student / assignment
    fb = instructor.home / "feedback" / student / assignment
    fb.mkdir(parents=True, exist_ok=True)
    (fb / "p1.html").write_text(html)
    for name in ("timestamp.txt", "submission_secret.txt"):
        shutil.copy(sub / name, fb / name)


def strip_paths(items: list[dict]) -> list[dict]:
    """The parts of ExchangeList output that do not depend on where a backend keeps things."""
    def clean(d: object) -> object:
        if isinstance(d, dict):
            return {k: clean(v) for k, v in sorted(d.items())
                    if k not in ("path", "timestamp", "local_feedback_path", "late", "random_string")}
        if isinstance(d, list):
            return [clean(x) for x in d]
        return d
    return json.loads(json.dumps(clean(items)))
