"""Building kio response values that differ field by field between versions.

Each kio version of a message is its own set of dataclasses, and later versions add
fields. Handlers describe a response once, with every field any version has; these
helpers keep the fields the requested version knows and drop the others.
"""

from __future__ import annotations

import dataclasses
import datetime
import sys
from functools import cache
from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32Timedelta

from rift_broker.protocol import response_type

__all__ = ["NO_THROTTLE", "error_code", "make", "nested", "response_class"]

NO_THROTTLE = i32Timedelta.parse(datetime.timedelta(0))


@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def make(cls: type, /, **values: Any) -> Any:
    """An instance of ``cls`` from the values whose names it has as fields."""
    names = _field_names(cls)
    return cls(**{k: v for k, v in values.items() if k in names})


def nested(response_cls: type, name: str, /, **values: Any) -> Any:
    """An instance of the nested class ``name`` from the module of ``response_cls``."""
    return make(getattr(sys.modules[response_cls.__module__], name), **values)


def response_class(api_key: int, version: int) -> type:
    cls: type = response_type(api_key, version)
    return cls


def error_code(code: int) -> ErrorCode:
    return ErrorCode(code)
