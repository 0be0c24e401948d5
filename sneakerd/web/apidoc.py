"""aiohttp-apispec's decorators with types, so handlers stay typed under strict mypy.

They only attach documentation to a handler; validation is done in the handler with the same
marshmallow schemas, so the document and the behaviour share one definition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import aiohttp_apispec

F = TypeVar("F", bound=Callable[..., Any])


def docs(**kwargs: Any) -> Callable[[F], F]:
    return cast(Callable[[F], F], aiohttp_apispec.docs(**kwargs))


def request_schema(schema: Any, **kwargs: Any) -> Callable[[F], F]:
    """A JSON body, required by default."""
    kwargs.setdefault("required", True)
    return cast(Callable[[F], F], aiohttp_apispec.request_schema(schema, **kwargs))


def querystring_schema(schema: Any, **kwargs: Any) -> Callable[[F], F]:
    return cast(Callable[[F], F], aiohttp_apispec.querystring_schema(schema, **kwargs))


def response_schema(schema: Any, code: int = 200, **kwargs: Any) -> Callable[[F], F]:
    return cast(Callable[[F], F], aiohttp_apispec.response_schema(schema, code, **kwargs))


def polish(spec: dict[str, Any]) -> None:
    """Say in the document what the handlers enforce but apispec 3 does not write down: request
    bodies refuse unknown keys (marshmallow's RAISE)."""
    definitions = spec.get("definitions", {})
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                ref = (
                    parameter.get("schema", {}).get("$ref", "")
                    if parameter.get("in") == "body"
                    else ""
                )
                name = ref.rsplit("/", 1)[-1]
                if name in definitions:
                    definitions[name]["additionalProperties"] = False
