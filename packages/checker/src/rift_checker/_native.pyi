"""Type stubs of the native core (_native.c): the checker pass's fast path in C."""

from array import array
from typing import Any

def setup(
    model_line: type[Any],
    value: type[Any],
    unset: Any,
    grow: Any,
    send_went_back: Any,
    poll_went_back: Any,
    fold: Any,
    observe: Any,
    /,
) -> None: ...
def run(pass_: Any, batch: list[Any], start: int, /) -> int: ...
def object_lines(block: bytes, /) -> int: ...
def sort_q(values: array[int], /) -> None: ...
