"""Streaming compression of archive objects: gzip (default), zstd, or none."""

from __future__ import annotations

import zlib
from typing import Protocol

from airflow_provider_logtap.errors import one_of

SUFFIXES = {"gzip": ".log.gz", "zstd": ".log.zst", "none": ".log"}
CONTENT_TYPES = {"gzip": "application/gzip", "zstd": "application/zstd", "none": "text/plain"}
DEFAULT_LEVELS = {"gzip": 6, "zstd": 3, "none": 0}


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


def kind_of(name: str) -> str | None:
    """The compression an object name's suffix says, or ``None``."""
    for kind, suffix in SUFFIXES.items():
        if kind != "none" and name.endswith(suffix):
            return kind
    return "none" if name.endswith(".log") else None
