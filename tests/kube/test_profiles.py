"""Course profiles through a real KubeSpawner (`_mock=True`): the pod each course gets, who may
get it, and that the pod validates against the Kubernetes schema."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Server
from support.net import free_port
from tornado import web

from coursehub.platform.courses import parse_quantity
from coursehub.platform.kube.profiles import (
    COURSE_LABEL,
    course_profile,
    course_profile_list,
    visible_profiles,
)
from coursehub.platform.kube.spawner import CourseKubeSpawner

from .conftest import course, k8s_validate, to_manifest

#: The spawner runs in the z2jh 4.4 hub image: also run these on JupyterHub 5.5 (scripts/test).
pytestmark = pytest.mark.hubcompat


def make_user(name: str, groups: list[str], admin: bool = False):
    return SimpleNamespace(
        name=name, id=7, admin=admin, groups=[SimpleNamespace(name=g) for g in groups],
        server=Server(), url=f"/user/{name}/", escaped_name=name, escaped_url=f"/user/{name}/",
    )


def make_spawner(catalog, user, **config) -> CourseKubeSpawner:
    from traitlets.config import Config

    c = Config()
    c.KubeSpawner.profile_list = course_profile_list(catalog)
    c.KubeSpawner.namespace = "coursehub"
    for key, value in config.items():
        setattr(c.CourseKubeSpawner, key, value)
    return CourseKubeSpawner(config=c, user=user, _mock=True)


def manifest_dict(obj) -> dict:
    return to_manifest(obj)


def test_profile_carries_the_course_environment(two_courses):
    p = course_profile(course(two_courses, "ml-300"))
    o = p["kubespawner_override"]
    assert p["slug"] == "ml-300"
    assert o["image"] == "registry.example.edu/ml:2026.1"
    assert o["mem_guarantee"] == 4 * 2**30 and o["mem_limit"] == 8 * 2**30
    assert o["cpu_guarantee"] == 1 and o["cpu_limit"] == 4
    assert o["storage_capacity"] == "10Gi"
    assert set(p["allowed_groups"]) == {"course:ml-300:student", "course:ml-300:ta", "course:ml-300:instructor"}


def test_visibility_by_group():
    profiles = [{"slug": "a", "allowed_groups": ["course:a:student"]}, {"slug": "b", "allowed_groups": ["course:b:ta"]},
                {"slug": "open"}, {"slug": "closed", "allowed_groups": []}]
    slugs = lambda ps: [p["slug"] for p in ps]  # noqa: E731
    assert slugs(visible_profiles(profiles, ["course:a:student"])) == ["a", "open"]
    assert slugs(visible_profiles(profiles, ["course:b:student"])) == ["open"]  # wrong role in b
    assert slugs(visible_profiles(profiles, [], admin=True)) == ["open"]
    assert slugs(visible_profiles(profiles, [], admin=True, admin_sees_all=True)) == ["a", "b", "open", "closed"]


@pytest.mark.parametrize("course_id", ["stats-200", "ml-300"])
async def test_each_course_pod_manifest_validates(kubeconfig, two_courses, course_id):
    user = make_user("student-1", [f"course:{course_id}:student"])
    spawner = make_spawner(two_courses, user)
    spawner.user_options = {"profile": course_id}
    await spawner.load_user_options()
    pod = manifest_dict(await spawner.get_pod_manifest())
    env = course(two_courses, course_id).environment
    container = pod["spec"]["containers"][0]
    assert container["image"] == env.image
    res = container["resources"]
    assert parse_quantity(str(res["requests"]["memory"])) == parse_quantity(env.mem_guarantee)
    assert float(res["limits"]["cpu"]) == env.cpu_limit
    assert pod["metadata"]["labels"][COURSE_LABEL] == course_id
    assert {"name": "COURSEHUB_COURSE", "value": course_id} in container["env"]  # as on the local spawner
    pvc = manifest_dict(spawner.get_pvc_manifest())
    assert pvc["spec"]["resources"]["requests"]["storage"] == env.storage
    k8s_validate(pod)
    k8s_validate(pvc)


async def test_demo_course_pod_validates(kubeconfig, demo_catalog):
    user = make_user("alice", ["course:demo-101:student"])
    spawner = make_spawner(demo_catalog, user)
    spawner.user_options = {"profile": "demo-101"}
    await spawner.load_user_options()
    pod = manifest_dict(await spawner.get_pod_manifest())
    assert pod["spec"]["containers"][0]["image"] == course(demo_catalog, "demo-101").environment.image
    k8s_validate(pod)


async def test_student_cannot_request_another_courses_profile(kubeconfig, two_courses):
    spawner = make_spawner(two_courses, make_user("eve", ["course:stats-200:student"]))
    spawner.user_options = {"profile": "ml-300"}
    with pytest.raises(ValueError, match="ml-300"):
        await spawner.load_user_options()


async def test_default_profile_is_the_users_own_course(kubeconfig, two_courses):
    spawner = make_spawner(two_courses, make_user("bob", ["course:ml-300:ta"]))
    spawner.user_options = {}
    await spawner.load_user_options()
    assert spawner.image == "registry.example.edu/ml:2026.1"
    form = await spawner.get_options_form()
    assert "ml-300" in form and "stats-200" not in form


async def test_user_without_a_course_is_refused(kubeconfig, two_courses):
    spawner = make_spawner(two_courses, make_user("mallory", ["some-other-group"]))
    spawner.user_options = {}
    with pytest.raises(web.HTTPError) as err:
        await spawner.load_user_options()
    assert err.value.status_code == 403 and "LMS" in err.value.log_message


async def test_admin_sees_all_only_when_enabled(kubeconfig, two_courses):
    admin = make_user("root", [], admin=True)
    spawner = make_spawner(two_courses, admin)
    spawner.user_options = {"profile": "ml-300"}
    with pytest.raises(web.HTTPError):
        await spawner.load_user_options()
    spawner = make_spawner(two_courses, admin, admin_sees_all_courses=True)
    spawner.user_options = {"profile": "ml-300"}
    await spawner.load_user_options()
    assert spawner.image == "registry.example.edu/ml:2026.1"


def test_invalid_pod_is_rejected_by_the_validator():
    """The validator itself must catch a broken object, or the tests above prove nothing."""
    from kubernetes_validate.utils import ValidationError

    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
           "spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": [1]}}}]}}
    with pytest.raises(ValidationError):
        k8s_validate(bad)
    unknown = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
               "spec": {"containers": [{"name": "c", "image": "i"}], "notAField": 1}}
    with pytest.raises(ValidationError):
        k8s_validate(unknown)


async def test_the_launch_picks_the_course_by_query_argument(kubeconfig, two_courses):
    """The LTI open flow redirects to /hub/spawn?course=<id> (JupyterHub 6: opt-course, prefix stripped)."""
    both = ["course:stats-200:student", "course:ml-300:student"]
    spawner = make_spawner(two_courses, make_user("carol", both))
    spawner.user_options = spawner.options_from_query({"course": ["stats-200"]})
    assert spawner.user_options == {"profile": "stats-200"}
    await spawner.load_user_options()
    assert spawner.image == "registry.example.edu/stats:2026.1"
    # the options form posts `profile`; that keeps working
    assert spawner.options_from_form({"profile": ["ml-300"]}) == {"profile": "ml-300"}


async def test_api_course_option_is_checked_like_a_profile(kubeconfig, two_courses):
    spawner = make_spawner(two_courses, make_user("dave", ["course:ml-300:student"]))
    spawner.user_options = {"course": "ml-300"}
    await spawner.load_user_options()
    assert spawner.image == "registry.example.edu/ml:2026.1"
    spawner = make_spawner(two_courses, make_user("dave", ["course:ml-300:student"]))
    spawner.user_options = {"course": "stats-200"}
    with pytest.raises(ValueError, match="stats-200"):
        await spawner.load_user_options()


@pytest.mark.parametrize(("groups", "role"), [
    (["course:ml-300:student"], "student"),
    (["course:ml-300:student", "course:stats-200:ta"], "staff"),
    (["course:ml-300:instructor"], "staff"),
])
async def test_staff_and_students_get_their_jupyter_config(kubeconfig, two_courses, groups, role):
    spawner = make_spawner(two_courses, make_user("erin", groups), role_config_root="/etc/coursehub/jupyter")
    spawner.user_options = {}
    await spawner.load_user_options()
    pod = manifest_dict(await spawner.get_pod_manifest())
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["COURSEHUB_ROLE"] == role
    assert env["JUPYTER_CONFIG_PATH"] == f"/etc/coursehub/jupyter/{role}"
    k8s_validate(pod)


async def test_dict_form_profile_list_is_filtered_too(kubeconfig, two_courses):
    from traitlets.config import Config

    c = Config()
    c.KubeSpawner.profile_list = {p["slug"]: p for p in course_profile_list(two_courses)}
    spawner = CourseKubeSpawner(config=c, user=make_user("fay", ["course:ml-300:student"]), _mock=True)
    assert [p["slug"] for p in spawner.profile_list(spawner)] == ["ml-300"]


@pytest.mark.parametrize(("cmd", "through_coursehub"), [
    (["jupyterhub-singleuser"], True),  # z2jh's singleuser.cmd
    (["/opt/conda/bin/jupyterhub-singleuser", "--debug"], True),
    (["start-singleuser.sh"], False),  # an operator's own command runs as it is
])
async def test_the_pod_runs_the_server_through_coursehubs_entry_point(kubeconfig, demo_catalog, cmd,
                                                                    through_coursehub):
    from coursehub.platform import userserver

    user = make_user("alice", ["course:demo-101:student"])
    spawner = make_spawner(demo_catalog, user)
    spawner.cmd = cmd
    spawner.user_options = {"profile": "demo-101"}
    await spawner.load_user_options()
    pod = manifest_dict(await spawner.get_pod_manifest())
    launch = ["python3", "-c", userserver.POD_LAUNCH] if through_coursehub else []
    assert pod["spec"]["containers"][0]["args"] == [*launch, *cmd, *spawner.get_args()]
    assert spawner.cmd == cmd  # the configured command itself is unchanged


# ---- start() returns when the pod's server accepts connections ---------------------------------


class PodServer:
    """KubeSpawner's start (a running pod at a loopback URL) and poll (the pod's state): the pod's
    server binds its port at the `bind_at`th poll; at `stop_at` the pod has stopped (exit 1)."""

    def __init__(self, bind_at: int = 0, stop_at: int = 0) -> None:
        self.port = free_port()
        self.bind_at, self.stop_at, self.polls = bind_at, stop_at, 0
        self.listener = None

    async def start(self, spawner):
        return f"http://127.0.0.1:{self.port}"

    async def poll(self, spawner):
        import socket

        self.polls += 1
        if self.polls == self.bind_at:
            self.listener = socket.create_server(("127.0.0.1", self.port))
        return 1 if self.polls == self.stop_at else None


@pytest.fixture
def pod(monkeypatch):
    from kubespawner import KubeSpawner

    server = PodServer()
    monkeypatch.setattr(KubeSpawner, "start", lambda self: server.start(self))
    monkeypatch.setattr(KubeSpawner, "poll", lambda self: server.poll(self))
    yield server
    if server.listener is not None:
        server.listener.close()


def student_spawner(catalog, **config) -> CourseKubeSpawner:
    config.setdefault("ready_poll_interval", 0.01)
    return make_spawner(catalog, make_user("ria", ["course:ml-300:student"]), **config)


async def test_start_returns_once_the_pods_server_accepts_connections(two_courses, pod):
    pod.bind_at = 3
    url = await student_spawner(two_courses).start()
    assert url == f"http://127.0.0.1:{pod.port}"
    assert pod.polls == 3  # two refused tries, then the first one after the bind


async def test_a_pod_that_stops_while_its_server_starts_fails_the_start(two_courses, pod):
    from coursehub.platform.readiness import ServerExited

    pod.stop_at = 2
    with pytest.raises(ServerExited, match="server of ria exited while starting"):
        await student_spawner(two_courses).start()


async def test_a_pod_whose_server_never_listens_fails_the_start_at_the_http_timeout(two_courses, pod):
    from coursehub.platform.readiness import ServerNotListening

    pod.bind_at = 10**9
    with pytest.raises(ServerNotListening, match="server of ria did not accept connections within 1 s"):
        await asyncio.wait_for(student_spawner(two_courses, http_timeout=1).start(), 30)
    assert pod.polls > 1


async def test_without_the_check_start_returns_when_the_pod_runs(two_courses, pod):
    pod.bind_at = 3
    assert await student_spawner(two_courses, ready_poll_interval=0).start() == f"http://127.0.0.1:{pod.port}"
    assert pod.polls == 0
