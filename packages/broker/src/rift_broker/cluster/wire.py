"""How cluster-internal messages cross the network: frozen dataclasses as JSON frames.

Raft traffic and broker-to-controller calls are Python values (frozen dataclasses)
in the cores. On the wire each is one frame, ``[length u32][JSON]``, where a value
is encoded as ``{"$t": "<TypeName>", "<field>": ...}``, ``bytes`` as
``{"$b": "<base64>"}`` and tuples as lists. Decoding only builds types registered
with the codec, so a peer cannot make us instantiate anything else; sequences come
back as tuples because every message type is immutable.

JSON is not the fastest encoding, but metadata traffic is small (heartbeats, votes,
a few records per topic change) and a readable wire format is worth more here.
Partition data never travels this way: followers replicate with Kafka Fetch.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
from collections.abc import Iterable
from typing import Any

FRAME = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024


class WireError(ValueError):
    """A frame that is not a valid message of a registered type."""


class MessageCodec:
    """Encodes and decodes the registered dataclass types."""

    def __init__(self, types: Iterable[type]) -> None:
        self._types: dict[str, type] = {}
        for t in types:
            if not dataclasses.is_dataclass(t):
                raise TypeError(f"{t!r} is not a dataclass")
            if t.__name__ in self._types and self._types[t.__name__] is not t:
                raise TypeError(f"two message types are named {t.__name__}")
            self._types[t.__name__] = t

    def encode(self, message: Any) -> bytes:
        body = json.dumps(self._to_json(message), separators=(",", ":")).encode()
        return FRAME.pack(len(body)) + body

    def decode(self, body: bytes) -> Any:
        """Decode one frame's body (without its length prefix)."""
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WireError(f"frame is not JSON: {exc}") from None
        return self._from_json(raw)

    def _to_json(self, value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            name = type(value).__name__
            if self._types.get(name) is not type(value):
                raise TypeError(f"{name} is not a registered message type")
            out: dict[str, Any] = {"$t": name}
            for f in dataclasses.fields(value):
                out[f.name] = self._to_json(getattr(value, f.name))
            return out
        if isinstance(value, bytes | bytearray | memoryview):
            return {"$b": base64.b64encode(bytes(value)).decode()}
        if isinstance(value, tuple | list):
            return [self._to_json(v) for v in value]
        if isinstance(value, dict):
            return {"$d": [[self._to_json(k), self._to_json(v)] for k, v in value.items()]}
        if isinstance(value, frozenset | set):
            return {"$s": sorted(self._to_json(v) for v in value)}
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise TypeError(f"cannot encode {type(value).__name__}")

    def _from_json(self, raw: Any) -> Any:
        if isinstance(raw, list):
            return tuple(self._from_json(v) for v in raw)
        if isinstance(raw, dict):
            if "$b" in raw:
                return base64.b64decode(raw["$b"])
            if "$d" in raw:
                return {self._from_json(k): self._from_json(v) for k, v in raw["$d"]}
            if "$s" in raw:
                return frozenset(self._from_json(v) for v in raw["$s"])
            name = raw.get("$t")
            cls = self._types.get(name) if isinstance(name, str) else None
            if cls is None:
                raise WireError(f"unknown message type {name!r}")
            kwargs = {k: self._from_json(v) for k, v in raw.items() if k != "$t"}
            try:
                return cls(**kwargs)
            except TypeError as exc:
                raise WireError(f"bad {name}: {exc}") from None
        return raw
