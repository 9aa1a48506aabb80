"""What the training configs share: a trained model's manifest records the config of its run ("recipe"), and
every later step (a domain bank, a re-measurement) rebuilds that config from it."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

C = TypeVar("C", bound="RecipeConfig")


class RecipeConfig:
    """Mixin for the training config dataclasses."""

    @classmethod
    def from_manifest(cls: type[C], manifest: dict[str, Any]) -> C:
        """The config a trained model's manifest records (keys this version does not know are dropped)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in manifest.get("recipe", {}).get("config", {}).items() if k in known})
