"""The grading service: a JupyterHub service with the exchange REST API (`python -m coursehub.grading.service`).

Extension points for other parts of coursehub: `make_app(settings, extra_handlers=..., plugins=...)`
and plugin modules (`coursehub.grading.service.plugins`).
"""

from .app import make_app, make_core
from .core import Caller, CollectedEvent, ExchangeCore, ServiceError
from .plugins import Plugins, load_plugins

__all__ = ["Caller", "CollectedEvent", "ExchangeCore", "Plugins", "ServiceError", "load_plugins", "make_app",
           "make_core"]
