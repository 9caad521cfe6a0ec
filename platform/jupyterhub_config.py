"""JupyterHub configuration for coursehub: load the validated settings and apply them.

Settings come from $COURSEHUB_SETTINGS (a YAML file; see docs/operators/settings.md) or the
embedded local defaults. All logic lives in coursehub.platform.hubconfig.
"""

from coursehub.platform.courses import load_catalog
from coursehub.platform.hubconfig import apply
from coursehub.platform.settings import load_settings

settings = load_settings()
apply(c, settings, load_catalog(settings.courses_dir))  # noqa: F821 - `c` is JupyterHub's config
