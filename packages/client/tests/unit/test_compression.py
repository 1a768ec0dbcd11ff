"""Codec framing details the round-trip tests do not pin down."""

from __future__ import annotations

import pytest

from rift_client.compression import Compression, available, compress, decompress
from rift_client.errors import InvalidArgument


def test_parse() -> None:
    assert Compression.parse("gzip") is Compression.GZIP
    assert Compression.parse(None) is Compression.NONE
    assert Compression.parse(4) is Compression.ZSTD
    with pytest.raises(InvalidArgument, match="use one of"):
        Compression.parse("brotli")


@pytest.mark.skipif(Compression.SNAPPY not in available(), reason="python-snappy missing")
def test_snappy_reads_xerial_and_raw() -> None:
    import snappy

    data = b"abc" * 50_000  # several xerial blocks
    framed = compress(Compression.SNAPPY, data)
    assert framed.startswith(b"\x82SNAPPY\x00")
    assert decompress(Compression.SNAPPY, framed) == data
    assert decompress(Compression.SNAPPY, snappy.compress(data)) == data  # librdkafka style


@pytest.mark.parametrize("codec", sorted(available()))
def test_empty_and_large_payloads(codec: Compression) -> None:
    for data in (b"", bytes(range(256)) * 1000):
        assert decompress(codec, compress(codec, data)) == data
