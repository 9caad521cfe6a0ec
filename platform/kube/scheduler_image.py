"""The user-scheduler's image for the cluster's Kubernetes minor.

z2jh's user-scheduler runs the official kube-scheduler binary; its RBAC and plugin configuration
follow that binary's minor, and a kube-scheduler older or newer than the API server can miss or
misuse APIs. z2jh 4.4.0 pins v1.30.14, so on any other minor `coursehub helm-values` sets
`scheduling.userScheduler.image.tag` from the settings' `kubernetes.version`, and the chart refuses
to install when the tag's minor is not the cluster's (templates/checks.yaml).
"""

from __future__ import annotations

#: The image z2jh's user-scheduler runs (its values' scheduling.userScheduler.image.name).
KUBE_SCHEDULER_IMAGE = "registry.k8s.io/kube-scheduler"
#: A released kube-scheduler patch per supported minor (the chart's kubeVersion starts at 1.28).
#: Newer patches work too: set jupyterhub.scheduling.userScheduler.image.tag in a site values file.
KUBE_SCHEDULER_TAGS = {
    "1.28": "v1.28.15",
    "1.29": "v1.29.15",
    "1.30": "v1.30.14",
    "1.31": "v1.31.10",
    "1.32": "v1.32.6",
    "1.33": "v1.33.2",
}
#: The chart's default (values.yaml): the oldest minor the coursehub tests validate against.
DEFAULT_MINOR = "1.32"


class UnknownKubeVersion(ValueError):
    """No kube-scheduler tag is known for that minor (the message lists the known ones)."""


def user_scheduler_tag(minor: str | None) -> str:
    """The kube-scheduler tag for a cluster minor such as "1.31" (None: the chart's default)."""
    minor = minor or DEFAULT_MINOR
    try:
        return KUBE_SCHEDULER_TAGS[minor]
    except KeyError:
        known = ", ".join(KUBE_SCHEDULER_TAGS)
        raise UnknownKubeVersion(
            f"kubernetes.version {minor!r}: no user-scheduler image is known for it (known: {known}); set "
            "jupyterhub.scheduling.userScheduler.image.tag to a kube-scheduler release of your cluster's minor "
            "in a site values file") from None
