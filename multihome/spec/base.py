"""The base of every spec model: camelCase aliases, immutable, and ``null`` meaning absent."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """camelCase keys, immutable; a key written as ``null`` counts as absent when it has a
    default (as in Kubernetes). Subclasses choose what unknown keys do."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        frozen=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        optional = {
            field.alias or name
            for name, field in cls.model_fields.items()
            if not field.is_required()
        }
        return {k: v for k, v in data.items() if not (v is None and k in optional)}
