"""Types of the compiled kernel (native/src/lib.rs): access-log lines cut and joined into JSON from cached
pieces; see :mod:`airflow_provider_logtap.core.accesslog`."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

class Documents:
    def __init__(
        self,
        *,
        three: bool,
        four: bool,
        pieces: Mapping[str, Callable[[bytes], Any]],
        limit: int,
        geo_limit: int,
        apache_bounds: tuple[int, int] | None = None,
    ) -> None: ...
    def documents(
        self, values: list[bytes | None], offsets: Sequence[int] | None = None, kafka: bytes | None = None
    ) -> list[bytes | None]: ...
    def bulk(
        self,
        values: list[bytes | None],
        offsets: Sequence[int],
        id_prefix: bytes,
        kafka: bytes,
        index_of: Callable[[bytes], bytes],
    ) -> tuple[bytes, list[int], list[bytes]]: ...

class Splitter:
    def __init__(
        self,
        *,
        regex: str,
        group: int,
        place: Callable[[bytes], tuple[str | None, str | None]],
        minute_place: Callable[[int], str | None] | None,
        no_match: str,
        limit: int,
    ) -> None: ...
    def split(self, values: list[bytes | None]) -> tuple[dict[str, list[bytes]], list[tuple[int, str]]]: ...
    def split_joined(self, values: list[bytes | None]) -> tuple[dict[str, bytes], list[tuple[int, str]]]: ...

def frame(lines: list[bytes | None]) -> tuple[bytes, int, bool]: ...
def unpack(messages: list[Any]) -> tuple[list[bytes | None], int, int, list[int]]: ...
def apache_epoch(text: bytes) -> int: ...
def iso_utc(epoch: int) -> str: ...
def ip_address(text: bytes) -> bytes | None: ...
def geo_block(packed: bytes) -> bytes: ...
