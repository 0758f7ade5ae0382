"""Client IP to ECS ``source.geo`` / ``source.as`` fields, from local MaxMind DB (``.mmdb``) files.

Any MaxMind DB file works: GeoLite2-City / GeoIP2-City, DB-IP's ``dbip-city-lite`` (same layout), GeoLite2-ASN
/ GeoIP2-ISP (``source.as``), and the flat layout of the ``ip-location-db`` project (``country_code``, ``city``,
``latitude`` ...; it has no country names). Pass several files to combine them (a city and an ASN database;
separate IPv4 and IPv6 files): the first file that has a field wins.

Lookups go through the ``maxminddb`` C extension (memory-mapped) and two caches, because decoding a city record
(names in ten languages) costs about 10 µs:

- per address, for repeat visitors;
- per /24 (IPv4) or /48 (IPv6) block, when the database's network for the address covers the whole block:
  neighbours share their answer (a database whose networks are smaller falls back to per-address lookups for
  that block).

Addresses in the same networks of every database share one answer object, so a cache full of addresses holds
one answer per network, not per address (and a caller that turns answers into JSON does so once per network).

Private, loopback, link-local, documentation and other non-global addresses (Python's
``ipaddress.is_global``, decided per block), addresses the database does not know and strings that are no IP
address all give ``None``, never an error.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_logtap._kernel import geo_block, ip_address
from airflow_provider_logtap.errors import ConfigurationError

ENV_VAR = "LOGTAP_GEOIP_DB"
LANGUAGE = "en"

log = logging.getLogger(__name__)

_UNSEEN: Any = object()
_MIXED: Any = object()  # a block whose addresses the database tells apart: look each one up


def default_database_path() -> tuple[Path, ...] | None:
    """The database file(s) named by ``$LOGTAP_GEOIP_DB`` (several separated by ``:``), or None when unset."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    paths = tuple(Path(p.strip()).expanduser() for p in value.split(os.pathsep) if p.strip())
    for path in paths:
        if not path.is_file():
            raise ConfigurationError(
                f"{ENV_VAR} names {str(path)!r}, which is not a file. Point it to a MaxMind DB file such as "
                "GeoLite2-City.mmdb or dbip-city-lite.mmdb (several separated by ':'), or unset it to load "
                "without GeoIP fields"
            )
    return paths


def _name(item: Mapping[str, Any] | None) -> str | None:
    if not item:
        return None
    names = item.get("names")
    if not names:
        return None
    value = names.get(LANGUAGE)
    return value if isinstance(value, str) and value else None


def _coordinate(value: Any) -> float | None:
    return round(float(value), 4) if isinstance(value, (int, float)) else None


def ecs_fields(record: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(geo, as)`` ECS fields of one database record (empty dicts for what it does not have)."""
    geo: dict[str, Any] = {}
    asn: dict[str, Any] = {}
    if not isinstance(record, Mapping):
        return geo, asn
    if "country_code" in record or "latitude" in record:  # ip-location-db's flat layout
        flat = {
            "country_iso_code": record.get("country_code"),
            "region_name": record.get("state1"),
            "city_name": record.get("city"),
            "postal_code": record.get("postcode"),
            "timezone": record.get("timezone"),
        }
        geo.update((k, v) for k, v in flat.items() if isinstance(v, str) and v)
        lat, lon = _coordinate(record.get("latitude")), _coordinate(record.get("longitude"))
        if lat is not None and lon is not None:
            geo["location"] = {"lat": lat, "lon": lon}
    else:  # GeoIP2 / GeoLite2 / DB-IP layout
        continent = record.get("continent")
        if continent:
            if continent.get("code"):
                geo["continent_code"] = continent["code"]
            if _name(continent):
                geo["continent_name"] = _name(continent)
        country = record.get("country")
        country_iso = country.get("iso_code") if country else None
        if country_iso:
            geo["country_iso_code"] = country_iso
        if _name(country):
            geo["country_name"] = _name(country)
        subdivisions = record.get("subdivisions")
        if subdivisions:
            region = subdivisions[0]
            if _name(region):
                geo["region_name"] = _name(region)
            if region.get("iso_code") and country_iso:
                geo["region_iso_code"] = f"{country_iso}-{region['iso_code']}"
        if _name(record.get("city")):
            geo["city_name"] = _name(record.get("city"))
        postal = record.get("postal")
        if postal and postal.get("code"):
            geo["postal_code"] = postal["code"]
        location = record.get("location")
        if location:
            lat, lon = _coordinate(location.get("latitude")), _coordinate(location.get("longitude"))
            if lat is not None and lon is not None:
                geo["location"] = {"lat": lat, "lon": lon}
            if location.get("time_zone"):
                geo["timezone"] = location["time_zone"]
    traits = record.get("traits")
    source = traits if isinstance(traits, Mapping) and "autonomous_system_number" in traits else record
    number = source.get("autonomous_system_number")
    if isinstance(number, int):
        asn["number"] = number
        organization = source.get("autonomous_system_organization")
        if isinstance(organization, str) and organization:
            asn["organization"] = {"name": organization}
    return geo, asn


class GeoIP:
    """ECS GeoIP fields of client addresses from one or more MaxMind DB files (see the module docstring).

    :param path: a ``.mmdb`` file, or several (fields of the first that has them win).
    :param cache_size: addresses, blocks and networks kept in the caches (each separately); 0 disables them.
    """

    def __init__(self, path: str | Path | Sequence[str | Path], cache_size: int = 65536) -> None:
        try:
            import maxminddb
        except ImportError:  # pragma: no cover - the [search] extra installs it
            raise ConfigurationError(
                "GeoIP needs the maxminddb package: pip install 'airflow-provider-logtap[search]'"
            ) from None
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigurationError(f"cache_size must be a whole number >= 0. Got {cache_size!r}")
        paths = [path] if isinstance(path, (str, Path)) else list(path)
        if not paths:
            raise ConfigurationError("GeoIP needs at least one database path. Got none")
        self.paths = tuple(Path(p) for p in paths)
        self.cache_size = cache_size
        self._readers: list[Any] = []
        self._by_ip: dict[str, tuple[dict[str, Any] | None, bool]] = {}
        self._by_block: dict[bytes, Any] = {}
        self._by_network: dict[tuple[tuple[int, int, int], ...], dict[str, Any] | None] = {}
        try:
            for p in self.paths:
                self._readers.append(self._open(maxminddb, p))
        except BaseException:
            self.close()
            raise
        self.database_types = tuple(str(r.metadata().database_type) for r in self._readers)

    @staticmethod
    def _open(maxminddb: Any, path: Path) -> Any:
        if not path.is_file():
            raise ConfigurationError(
                f"GeoIP database {str(path)!r} does not exist. Download one (dev/geoip/fetch.sh fetches DB-IP's "
                "free City Lite database; production: GeoLite2-City.mmdb or a DB-IP file) and pass its path"
            )
        try:
            try:
                return maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT)
            except ValueError:  # the C extension is not built on this platform
                log.warning(
                    "maxminddb's C extension is missing; GeoIP lookups use the slower pure-Python reader"
                )
                return maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
        except maxminddb.InvalidDatabaseError as exc:
            raise ConfigurationError(
                f"GeoIP database {str(path)!r} is not a MaxMind DB (.mmdb) file ({exc}). Pass a .mmdb file such as "
                "GeoLite2-City.mmdb or dbip-city-lite.mmdb"
            ) from None

    def close(self) -> None:
        """Unmap the files; lookups after this find nothing."""
        for reader in self._readers:
            reader.close()
        self._readers = []
        self._by_ip.clear()
        self._by_block.clear()
        self._by_network.clear()

    def __enter__(self) -> GeoIP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lookup(self, ip: str) -> dict[str, Any] | None:
        """``{"geo": {...}, "as": {...}}`` (each only when found) to merge under ECS ``source``, or None.

        The result is shared between calls (cached): do not change it.
        """
        return self.lookup_block(ip)[0]

    def lookup_block(self, ip: str) -> tuple[dict[str, Any] | None, bool]:
        """``lookup(ip)``, and whether every address of ``ip``'s block (the kernel's ``geo_block``: its /24 or
        /48) has the same answer: the database's networks cover the whole block, or the block is not global."""
        known = self._by_ip.get(ip)
        if known is None:
            known = self._lookup(ip)
            if self.cache_size:
                if len(self._by_ip) >= self.cache_size:
                    self._by_ip.clear()
                self._by_ip[ip] = known
        return known

    def _lookup(self, ip: str) -> tuple[dict[str, Any] | None, bool]:
        packed = ip_address(ip.encode("utf-8", "surrogatepass"))
        if packed is None:
            ip = ip.partition("%")[0]  # fe80::1%eth0: the zone is no part of the address
            packed = ip_address(ip.encode("utf-8", "surrogatepass"))
            if packed is None or len(packed) != 16:
                return None, False
        block = geo_block(packed)
        if len(packed) == 16 and len(block) == 3:
            # IPv4-mapped IPv6: the answer and the block of its IPv4 address
            return self.lookup_block(socket.inet_ntop(socket.AF_INET, packed[12:]))
        known = self._by_block.get(block, _UNSEEN)
        if known is not _UNSEEN and known is not _MIXED:
            return known, True
        if known is _UNSEEN and not ipaddress.ip_address(packed).is_global:
            self._remember_block(block, None)
            return None, True
        found, prefix = self._query(ip, packed)
        whole = known is _UNSEEN and prefix <= 8 * len(block)
        if known is _UNSEEN:
            self._remember_block(block, found if whole else _MIXED)
        return found, whole

    def _remember_block(self, block: bytes, value: Any) -> None:
        if self.cache_size:
            if len(self._by_block) >= self.cache_size:
                self._by_block.clear()
            self._by_block[block] = value

    def _query(self, ip: str, packed: bytes) -> tuple[dict[str, Any] | None, int]:
        """The merged fields of all databases, and the longest prefix length of their networks (the smallest
        network around ``ip`` with the same answer). Addresses in the same networks get one shared answer
        object (kept like the caches): its memory, and the JSON a caller makes of it, are paid per network."""
        records: list[tuple[Any, int]] = []
        for reader in self._readers:
            try:
                records.append(reader.get_with_prefix_len(ip))
            except ValueError:  # an IPv6 address in an IPv4-only database: no answer anywhere in the block
                records.append((None, -1))
        bits = 8 * len(packed)
        number = int.from_bytes(packed, "big")
        # (bits, prefix, network) per database: an IPv4 and an IPv6 network with the same prefix and bits differ
        networks = tuple(
            (bits, prefix, number >> max(bits - prefix, 0) if prefix >= 0 else 0) for _, prefix in records
        )
        longest = max((prefix for _, prefix in records), default=0)
        known = self._by_network.get(networks, _UNSEEN)
        if known is not _UNSEEN:
            return known, longest
        geo: dict[str, Any] = {}
        asn: dict[str, Any] = {}
        for record, prefix in records:
            if prefix < 0:
                continue
            g, a = ecs_fields(record)
            for k, v in g.items():
                geo.setdefault(k, v)
            for k, v in a.items():
                asn.setdefault(k, v)
        result: dict[str, Any] = {}
        if geo:
            result["geo"] = geo
        if asn:
            result["as"] = asn
        answer = result or None
        if self.cache_size:
            if len(self._by_network) >= self.cache_size:
                self._by_network.clear()
            self._by_network[networks] = answer
        return answer, longest
