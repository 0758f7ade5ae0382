"""Streaming compression of archive objects: gzip (default), zstd, or none."""

from __future__ import annotations

import zlib
from typing import Protocol

from airflow_provider_logtap.errors import ConfigurationError, one_of

SUFFIXES = {"gzip": ".log.gz", "zstd": ".log.zst", "none": ".log"}
CONTENT_TYPES = {"gzip": "application/gzip", "zstd": "application/zstd", "none": "text/plain"}
DEFAULT_LEVELS = {"gzip": 2, "zstd": 3, "none": 0}
# gzip levels 0-3 run on ISA-L (python-isal: same gzip format, 3-10x faster than zlib); 4-9 on zlib (smaller
# output, slower).
ISAL_MAX_LEVEL = 3


class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Identity:
    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class _Zstd:
    def __init__(self, level: int) -> None:
        import zstandard

        self._obj = zstandard.ZstdCompressor(level=level).compressobj()

    def compress(self, data: bytes) -> bytes:
        return bytes(self._obj.compress(data))

    def flush(self) -> bytes:
        return bytes(self._obj.flush())


def check(kind: str) -> str:
    return one_of("compression", kind, SUFFIXES)


def new_compressor(kind: str, level: int | None = None) -> Compressor:
    """A fresh streaming compressor producing one gzip member / one zstd frame / the bytes as they are."""
    check(kind)
    lvl = DEFAULT_LEVELS[kind] if level is None else level
    if kind == "gzip":
        if not 0 <= lvl <= 9:
            raise ConfigurationError(f"gzip compression_level must be 0-9 (0-3: ISA-L, 4-9: zlib). Got {lvl}")
        if lvl <= ISAL_MAX_LEVEL:
            from isal import isal_zlib

            return isal_zlib.compressobj(lvl, isal_zlib.DEFLATED, 31)
        return zlib.compressobj(lvl, zlib.DEFLATED, 31)
    if kind == "zstd":
        return _Zstd(lvl)
    return _Identity()


def decompress(kind: str, data: bytes) -> bytes:
    """The whole content of an archive object (for readers and tests)."""
    check(kind)
    if kind == "gzip":
        return zlib.decompress(data, 47)
    if kind == "zstd":
        import zstandard

        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    return data
