"""The pre-lecture placeholder scaler: decisions at given times, the patch it sends (validated
against the Kubernetes schema) and its use of the API (a fake AppsV1Api)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from coursehub.platform.kube.capacity import GI, NodeShape, PlanParams
from coursehub.platform.kube.scaler import apply_replicas, desired_replicas, scale_body

from .conftest import k8s_validate

UTC = dt.UTC
PARAMS = PlanParams(node=NodeShape(cpu=8, memory=32 * GI), node_boot_minutes=5, arrival_minutes=10, lead_minutes=15)
# demo-101: Mon/Wed 10:00 Europe/Berlin; 23 Nov 2026 is a Monday in CET (09:00 UTC).
START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("offset_min", "expected"), [
    (-16, 0), (-15, 120), (-1, 120), (0, 120), (9.99, 120), (10, 0), (60, 0),
])
def test_replicas_around_a_lecture(demo_catalog, offset_min, expected):
    at = START + dt.timedelta(minutes=offset_min)
    assert desired_replicas(list(demo_catalog), PARAMS, at).replicas == expected


def test_no_lecture_on_tuesday_and_base_is_kept(demo_catalog):
    tue = START + dt.timedelta(days=1)
    d = desired_replicas(list(demo_catalog), PARAMS, tue, base=3)
    assert d.replicas == 3 and d.reasons == []


def test_shared_start_adds_up_and_is_capped(two_courses):
    thu = dt.datetime(2026, 11, 26, 8, 50, tzinfo=UTC)
    d = desired_replicas(list(two_courses), PARAMS, thu)
    assert d.replicas == 90 and len(d.reasons) == 2
    capped = desired_replicas(list(two_courses), PARAMS, thu, maximum=50)
    assert capped.replicas == 50 and "capped" in capped.reasons[-1]


class FakeAppsApi:
    def __init__(self, replicas: int):
        self.replicas = replicas
        self.patches: list[tuple[str, str, dict]] = []

    def read_namespaced_stateful_set_scale(self, name, namespace):
        return SimpleNamespace(spec=SimpleNamespace(replicas=self.replicas))

    def patch_namespaced_stateful_set_scale(self, name, namespace, body):
        self.patches.append((name, namespace, body))
        self.replicas = body["spec"]["replicas"]
        return body


def test_apply_patches_the_scale_subresource_only_on_change():
    api = FakeAppsApi(0)
    assert apply_replicas(api, "coursehub", 120) == (0, 120)
    assert api.patches == [("user-placeholder", "coursehub", scale_body("user-placeholder", "coursehub", 120))]
    assert apply_replicas(api, "coursehub", 120) == (120, 120)
    assert len(api.patches) == 1
    assert apply_replicas(api, "coursehub", 0, dry_run=True) == (120, 120)
    assert len(api.patches) == 1 and api.replicas == 120


def test_scale_body_validates():
    k8s_validate(scale_body("user-placeholder", "coursehub", 120))
    from kubernetes_validate.utils import ValidationError

    with pytest.raises(ValidationError):
        k8s_validate(scale_body("user-placeholder", "coursehub", "many"))  # type: ignore[arg-type]


def test_command_dry_run_through_the_cli(capsys):
    from coursehub.cli import main

    assert main(["scale-placeholders", "--dry-run", "--at", "2026-11-23T09:50:00+01:00"]) == 0
    assert "would set 120 replicas" in capsys.readouterr().out
    assert main(["scale-placeholders", "--dry-run", "--at", "2026-11-23T09:50:00"]) == 1
    assert "UTC offset" in capsys.readouterr().err


class ForbiddenApi(FakeAppsApi):
    def patch_namespaced_stateful_set_scale(self, name, namespace, body):
        from kubernetes.client.exceptions import ApiException

        raise ApiException(status=403, reason="Forbidden")


def test_command_reports_a_refused_patch(monkeypatch, capsys):
    from coursehub.cli import main
    from coursehub.platform.kube import scaler

    monkeypatch.setattr(scaler, "_kube_apps_api", lambda: ForbiddenApi(0))
    assert main(["scale-placeholders", "--at", "2026-11-23T09:50:00+01:00", "--namespace", "ns1"]) == 1
    err = capsys.readouterr().err
    assert "ns1/user-placeholder" in err and "403" in err and "Role coursehub-scaler" in err


def test_command_applies_through_the_client(monkeypatch):
    from coursehub.cli import main
    from coursehub.platform.kube import scaler

    api = FakeAppsApi(0)
    monkeypatch.setattr(scaler, "_kube_apps_api", lambda: api)
    assert main(["scale-placeholders", "--at", "2026-11-23T09:50:00+01:00", "--namespace", "ns1"]) == 0
    assert api.patches == [("user-placeholder", "ns1", scale_body("user-placeholder", "ns1", 120))]
