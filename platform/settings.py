"""Platform settings: one YAML file, validated by this schema, with embedded defaults for local use.

Every section has a default, so an empty (or absent) file gives the local platform: SQLite, the
local spawner, the local sandbox and the demo course. At scale the same file switches backends.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coursehub.paths import default_courses_dir, default_state_dir

from .courses import ItemId, Quantity
from .errors import ConfigError, Problem, load_yaml, parse_model

Backend = Literal["local", "kubernetes"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HubSettings(Section):
    ip: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    #: The hub's own port for the proxy and services (loopback in local mode); 0: any free port.
    hub_port: int = Field(0, ge=0, le=65535)
    #: The proxy's REST API port (loopback, local mode); 0: any free port.
    proxy_api_port: int = Field(0, ge=0, le=65535)
    #: JupyterHub database; default: SQLite in the state folder.
    db_url: str | None = None
    concurrent_spawn_limit: int = Field(100, ge=0)
    active_server_limit: int = Field(0, ge=0)
    #: Seconds a user server may take to start and to answer (z2jh's default is 300).
    start_timeout: int = Field(300, gt=0)
    admin_users: list[str] = []
    #: Base URL the outside world uses (for LTI redirect URIs and tool configuration).
    public_url: str | None = None


class SpawnerSettings(Section):
    backend: Backend = "local"
    #: Seconds of inactivity before jupyterhub-idle-culler stops a server; 0 disables culling.
    idle_timeout: int = Field(3600, ge=0)
    #: Local backend: where per-user home folders go (default: <state_dir>/homes).
    homes_dir: Path | None = None
    #: Start an assignment notebook's kernel while JupyterLab loads (after an LTI launch opens it),
    #: instead of when Lab asks for it: the student waits less; it is the kernel Lab would start.
    prestart_kernel: bool = True


class LtiPlatform(Section):
    """One registered LMS (an LTI 1.3 platform)."""

    name: ItemId
    issuer: str = Field(min_length=1)
    client_ids: list[str] = Field(min_length=1)
    deployment_ids: list[str] = Field(min_length=1)
    auth_login_url: str
    jwks_url: str
    token_url: str
    algorithms: list[Literal["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]] = ["RS256"]
    #: Other origins (scheme://host) the platform serves AGS/NRPS from, e.g. Canvas's API host; grade
    #: sync refuses service URLs on any other host.
    service_origins: list[str] = []


class LtiSettings(Section):
    enabled: bool = True
    platforms: list[LtiPlatform] = []
    leeway_seconds: int = Field(60, ge=0, le=600)
    max_age_seconds: int = Field(600, gt=0)
    nonce_ttl_seconds: int = Field(900, gt=0)
    jwks_cache_seconds: int = Field(300, ge=0)
    #: An unknown key id makes the hub refetch a platform's JWKS at most this often.
    jwks_min_refetch_seconds: int = Field(10, ge=0)
    #: The built-in LMS launch page (local mode only, loopback only).
    local_lms: bool = True
    #: Hosts (host or host:port) LMSes may register from through dynamic registration links;
    #: [] = any host with public addresses.
    registration_hosts: list[str] = []

    @model_validator(mode="after")
    def _unique_names(self) -> LtiSettings:
        names = [p.name for p in self.platforms]
        if len(names) != len(set(names)):
            raise ValueError("platform names must be unique")
        return self


class SsoSettings(Section):
    """Campus single sign-on through an OIDC provider (oauthenticator's GenericOAuthenticator)."""

    enabled: bool = False
    login_service: str = "Campus sign-in"
    client_id: str = ""
    #: The secret itself is read from this environment variable, never from the file.
    client_secret_env: str = "COURSEHUB_SSO_CLIENT_SECRET"
    authorize_url: str = ""
    token_url: str = ""
    userdata_url: str = ""
    scope: list[str] = ["openid", "profile", "email"]
    username_claim: str = "sub"
    #: Claim listing the person's groups/affiliations, and which values make them staff.
    roles_claim: str | None = None
    staff_values: list[str] = []
    #: Claim used to link an SSO identity with LTI identities of the same person (off when None).
    link_claim: str | None = None

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> SsoSettings:
        if self.enabled:
            missing = [k for k in ("client_id", "authorize_url", "token_url", "userdata_url") if not getattr(self, k)]
            if missing:
                raise ValueError(f"SSO is enabled but {', '.join(missing)} not set")
        return self


class AuthSettings(Section):
    #: The development login: loopback-only, local mode only; replaced by the local LMS page.
    dev_login: bool = False
    lti: LtiSettings = LtiSettings()
    sso: SsoSettings = SsoSettings()


class SandboxLimits(Section):
    cpu_seconds: int = Field(120, gt=0)
    cell_timeout_seconds: int = Field(30, gt=0)
    submission_timeout_seconds: int = Field(300, gt=0)
    memory: Quantity = "1Gi"
    processes: int = Field(64, gt=0)
    file_size: Quantity = "64Mi"
    output_bytes: int = Field(1_000_000, gt=0)


class LmsSyncSettings(Section):
    """The grading service's LMS timers (AGS scores, NRPS rosters, line items, names)."""

    #: How often due scores are sent to the LMS.
    send_interval_seconds: float = Field(30.0, gt=0)
    #: How often each linked course's roster is read (NRPS) into groups and the gradebook, and its
    #: line items checked against course.yaml; 0 turns the timer off ("Update roster" still works).
    roster_interval_seconds: float = Field(3600.0, ge=0)
    #: Students the LMS no longer lists keep access this long (staff lose theirs at once).
    student_grace_days: float = Field(14.0, ge=0)


class GradingSettings(Section):
    enabled: bool = True
    port: int = Field(8090, ge=1, le=65535)
    #: Grading database; default: SQLite in the state folder.
    db_url: str | None = None
    #: Where released files, submissions and feedback are kept (default: <state_dir>/exchange).
    storage_dir: Path | None = None
    max_file_bytes: int = Field(20 * 2**20, gt=0)
    max_submission_bytes: int = Field(100 * 2**20, gt=0)
    executor: Backend = "local"
    workers: int | None = Field(None, ge=1)
    max_attempts: int = Field(3, ge=1)
    sandbox: SandboxLimits = SandboxLimits()
    #: Grading-service plugins (modules with `setup(plugins)`); the course dashboard is one.
    plugins: list[str] = ["coursehub.grading.dashboard", "coursehub.grading.queue.plugin",
                          "coursehub.grading.instant.plugin"]
    lms: LmsSyncSettings = LmsSyncSettings()


class TextbookSettings(Section):
    """The textbooks service: serves each course's built book at /services/textbooks/<course>/."""

    enabled: bool = True
    #: Loopback port of the service; 0 picks a free port at hub start (it is reached via the proxy).
    port: int = Field(0, ge=0, le=65535)
    #: Build missing or stale books in the background when the service starts (otherwise on first visit).
    build_at_start: bool = False


class KubernetesSettings(Section):
    namespace: str = "coursehub"
    storage_class: str | None = None
    grader_image: str = "ghcr.io/coursehub/grader:0.1.0"
    hub_image: str = "ghcr.io/coursehub/hub:0.1.0"
    node_cpu: float = Field(8, gt=0)
    node_memory: Quantity = "32Gi"
    node_boot_minutes: float = Field(5, gt=0)
    #: What a user node keeps for the system; the rest is allocatable to user pods.
    node_reserved_cpu: float = Field(0.5, ge=0)
    node_reserved_memory: Quantity = "2Gi"
    #: Pods one user node may hold (the kubelet's default maximum is 110, minus system pods).
    max_pods_per_node: int = Field(100, gt=0)
    #: Students of a lecture arrive spread over this many minutes after it starts.
    arrival_minutes: float = Field(10, gt=0)
    #: Placeholders go up this long before a lecture starts (node boot plus a margin).
    placeholder_lead_minutes: float = Field(15, ge=0)
    #: Share of each course's students active outside lectures (homework, deadlines).
    baseline_share: float = Field(0.05, ge=0, le=1)
    #: Raise and lower the user placeholders around lectures (the scale-placeholders CronJob).
    scale_placeholders: bool = True
    #: Secret with the PostgreSQL passwords (keys `hub-password`, `grading-password`).
    db_secret: str = "coursehub-db"
    #: Grading storage (submissions, feedback): size of its volume claim.
    grading_storage: Quantity = "50Gi"
    #: The cluster's Kubernetes minor ("1.31"): picks the user-scheduler image (kube-scheduler of that minor).
    version: str | None = Field(None, pattern=r"^1\.\d+$")
    #: A Secret you create holding the LTI tool key (key `tool-key.pem`); unset: the chart generates one.
    lti_key_secret: str | None = None
    #: Image reference (as rendered, `name:tag`) -> its registry digest (`sha256:...`, or `name@sha256:...`
    #: as `docker inspect` prints it): helm-values pins those images by digest.
    image_digests: dict[str, str] = {}


class Settings(Section):
    mode: Backend = "local"
    state_dir: Path = Field(default_factory=default_state_dir)
    courses_dir: Path = Field(default_factory=default_courses_dir)
    hub: HubSettings = HubSettings()
    spawner: SpawnerSettings = SpawnerSettings()
    auth: AuthSettings = AuthSettings()
    grading: GradingSettings = GradingSettings()
    textbook: TextbookSettings = TextbookSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()

    #: The file these settings came from (not part of the file).
    source: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _local_only_features(self) -> Settings:
        loopback = _is_loopback(self.hub.ip)
        if self.auth.dev_login and (self.mode != "local" or not loopback):
            raise ValueError("auth.dev_login is for local use: it needs mode 'local' and hub.ip on loopback")
        if self.auth.lti.local_lms and self.mode != "local":
            # Not an error: the built-in LMS page simply never runs outside local mode.
            self.auth.lti.local_lms = False
        return self

    @property
    def local(self) -> bool:
        return self.mode == "local"

    def hub_db_url(self) -> str:
        return self.hub.db_url or f"sqlite:///{self.default_hub_db_file()}"

    def default_hub_db_file(self) -> Path:
        """The hub's SQLite file when `hub.db_url` names no database."""
        return self.state_dir / "jupyterhub.sqlite"

    def grading_db_url(self) -> str:
        return self.grading.db_url or f"sqlite:///{self.state_dir / 'grading.sqlite'}"

    def homes_dir(self) -> Path:
        return self.spawner.homes_dir or self.state_dir / "homes"

    def storage_dir(self) -> Path:
        return self.grading.storage_dir or self.state_dir / "exchange"

    def public_url(self) -> str:
        return (self.hub.public_url or f"http://{self.hub.ip}:{self.hub.port}").rstrip("/")


def _is_loopback(ip: str) -> bool:
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def is_loopback(ip: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    return _is_loopback(ip)


def load_settings(path: Path | None = None, **overrides: object) -> Settings:
    """Load platform settings from `path` (or `$COURSEHUB_SETTINGS`), else the embedded defaults.

    Relative paths in the file are relative to the file's folder. `overrides` set top-level keys
    (e.g. state_dir from the command line) before validation.
    """
    if path is None and os.environ.get("COURSEHUB_SETTINGS"):
        path = Path(os.environ["COURSEHUB_SETTINGS"])
    data: dict = {}
    if path is not None:
        loaded = load_yaml(path)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError([Problem(path, "", "expected a mapping of settings")])
        data = dict(loaded or {})
        for key in ("state_dir", "courses_dir"):
            if key in data and isinstance(data[key], str) and not Path(data[key]).is_absolute():
                data[key] = str((path.parent / data[key]).resolve())
    for key, value in overrides.items():
        if value is not None:
            data[key] = value
    settings = parse_model(Settings, data, path)
    settings.source = path.resolve() if path else None
    return settings
