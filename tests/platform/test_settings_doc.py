"""The operators' settings reference lists every key of the schema, so the docs cannot fall behind."""

from __future__ import annotations

from pydantic import BaseModel

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.settings import Settings


def leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys += leaf_keys(field.annotation, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def test_every_settings_key_is_documented():
    doc = (SOURCE_ROOT / "docs" / "operators" / "settings.md").read_text()
    keys = leaf_keys(Settings)
    assert len(keys) > 40
    missing = [k for k in keys if f"`{k}`" not in doc]
    assert not missing, f"docs/operators/settings.md lacks: {missing}"
