"""Pages the LTI handlers answer with: no caching, and refusals with one audit line each."""

from __future__ import annotations

from typing import Any

from .audit import audit
from .refusal import LaunchRefused


class PageMixin:
    async def render_page(self: Any, template: str, status: int, **ns: Any) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        html = await self.render_template(template, **ns)
        self.finish(html)

    async def refuse(self: Any, refusal: LaunchRefused, **ids: Any) -> None:
        """The refusal's page and audit line; ids the validator learnt (client id, deployment) included."""
        audit(self.log, "refused", refusal.reason, ip=self.request.remote_ip,
              detail=refusal.detail or None, **{**ids, **refusal.ids})
        await self.render_page(refusal.page, refusal.status, message=refusal.message, reason=refusal.reason)
