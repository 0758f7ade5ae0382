"""Tricky Apache access-log lines, each with where the case is documented and the document it must give.

``expect`` is the parsed document flattened to dotted ECS names, without ``message`` (always the raw line as
text): every field the parser produces is listed, so a field that appears or goes missing fails the test. A
``str`` expect is the beginning of the reason a line has no document.

The lines are written for this corpus (addresses mostly from the documentation ranges of RFC 5737 / RFC 3849);
each reproduces a case the cited source shows or describes. Python bytes literals: ``rb"...\\x16..."`` is
Apache's escaped text (backslash, x, 1, 6), ``b"...\\xe9..."`` a raw byte.
"""

from __future__ import annotations

from typing import Any, NamedTuple

MOD_LOG_CONFIG = "https://httpd.apache.org/docs/2.4/mod/mod_log_config.html#formats"
LOGS_DOC = "https://httpd.apache.org/docs/2.4/logs.html"
BEATS_APACHE = "https://github.com/elastic/beats/tree/main/filebeat/module/apache/access/test"
INTEGRATIONS_APACHE = (
    "https://github.com/elastic/integrations/blob/main/packages/apache/data_stream/access/_dev/test/pipeline/"
    "test-access-basic.log"
)
MOZ = "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0"


class Case(NamedTuple):
    name: str
    source: str
    line: bytes
    expect: dict[str, Any] | str


def ok(ts: str, ip: str, status: int, **more: Any) -> dict[str, Any]:
    """An expected document: timestamp, client IP, status and the other fields (``http_version`` for
    ``http.version`` etc.: underscores of the keyword become dots, ``__`` an underscore)."""
    doc: dict[str, Any] = {
        "@timestamp": ts,
        "source.address": ip,
        "source.ip": ip,
        "http.response.status_code": status,
    }
    for key, value in more.items():
        name = key.replace("__", "\0").replace("_", ".").replace("\0", "_")
        if value is None:
            doc.pop(name, None)
        else:
            doc[name] = value
    return doc


LONG_TARGET = b"/search?q=" + b"a" * 8000

CASES = [
    Case(
        "Common Log Format, the documentation's example (user frank)",
        LOGS_DOC + "#common",
        b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
        ok(
            "2000-10-10T20:55:36Z",
            "127.0.0.1",
            200,
            user_name="frank",
            http_request_method="GET",
            url_original="/apache_pb.gif",
            http_version="1.0",
            http_response_body_bytes=2326,
        ),
    ),
    Case(
        "Combined Log Format, the documentation's example: brackets inside the user agent",
        LOGS_DOC + "#combined",
        b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
        b'"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"',
        ok(
            "2000-10-10T20:55:36Z",
            "127.0.0.1",
            200,
            user_name="frank",
            http_request_method="GET",
            url_original="/apache_pb.gif",
            http_version="1.0",
            http_response_body_bytes=2326,
            http_request_referrer="http://www.example.com/start.html",
            user__agent_original="Mozilla/4.08 [en] (Win98; I ;Nav)",
        ),
    ),
    Case(
        "IPv6 loopback client, common format, zone +0200",
        BEATS_APACHE + "/darwin-2.4.23.log",
        b'::1 - - [26/Dec/2016:16:16:29 +0200] "GET /favicon.ico HTTP/1.1" 404 209',
        ok(
            "2016-12-26T14:16:29Z",
            "::1",
            404,
            http_request_method="GET",
            url_original="/favicon.ico",
            http_version="1.1",
            http_response_body_bytes=209,
        ),
    ),
    Case(
        'Request timeout: no request line ("-"), no bytes ("-"): status 408',
        BEATS_APACHE + "/darwin-2.4.23.log",
        b'::1 - - [26/Dec/2016:16:16:48 +0200] "-" 408 -',
        ok("2016-12-26T14:16:48Z", "::1", 408),
    ),
    Case(
        'vhost_combined 408 with "-" request, referrer and agent, and one more field after the agent',
        "https://serverdevworker.com/13936b110 (Server Fault: Apache 408 entries with no request)",
        b'www.example.com:80 10.240.1.8 - - [06/Mar/2013:00:39:19 +0000] "-" 408 0 "-" "-" -',
        ok(
            "2013-03-06T00:39:19Z",
            "10.240.1.8",
            408,
            http_response_body_bytes=0,
            destination_address="www.example.com",
            destination_domain="www.example.com",
            destination_port=80,
        ),
    ),
    Case(
        "TLS ClientHello sent to a plain-HTTP port: Apache logs the bytes \\x-escaped as the request",
        "https://www.joshwieder.net/2015/11/an-explanation-of-webserver-logs-that.html ; "
        "https://isc.sans.edu/diary/28338 (why only the first bytes appear: a 0x00 ends the string)",
        rb'198.51.100.23 - - [03/Nov/2015:13:56:23 -0500] "\x16\x03\x02\x01o\x01" 400 226 "-" "-"',
        ok("2015-11-03T18:56:23Z", "198.51.100.23", 400, http_response_body_bytes=226),
    ),
    Case(
        "Scanner probe whose method is no HTTP token: kept, without method and URL",
        INTEGRATIONS_APACHE,
        b'203.0.113.50 - - [13/Nov/2023:10:44:01 +0000] "<SCRIPT>NXSSTEST</SCRIPT> / HTTP/1.1" 400 3386 "-" "-"',
        ok("2023-11-13T10:44:01Z", "203.0.113.50", 400, http_response_body_bytes=3386),
    ),
    Case(
        'Request line "- - HTTP/1.0": dashes are no method or URL, the version is real',
        INTEGRATIONS_APACHE,
        b'127.0.0.1 - - [14/Jun/2024:12:20:12 +0530] "- - HTTP/1.0" 400 226 "-" "-"',
        ok("2024-06-14T06:50:12Z", "127.0.0.1", 400, http_version="1.0", http_response_body_bytes=226),
    ),
    Case(
        "A bare newline sent as the request (logged as \\n), common format with a number after it",
        INTEGRATIONS_APACHE,
        rb'127.0.0.1 - - [22/May/2024:08:21:14 +0300] "\n" 400 226 98',
        ok("2024-05-22T05:21:14Z", "127.0.0.1", 400, http_response_body_bytes=226),
    ),
    Case(
        'Client logged by host name (HostnameLookups On) and an extra "-" field after the agent',
        BEATS_APACHE + "/test.log",
        b'monitoring-server - - [29/May/2017:19:02:48 +0000] "GET /status HTTP/1.1" 200 612 "-" '
        b'"Mozilla/5.0 (Windows NT 6.1; rv:15.0) Gecko/20120716 Firefox/15.0a2" "-"',
        {
            "@timestamp": "2017-05-29T19:02:48Z",
            "source.address": "monitoring-server",
            "source.domain": "monitoring-server",
            "http.request.method": "GET",
            "url.original": "/status",
            "http.version": "1.1",
            "http.response.status_code": 200,
            "http.response.body.bytes": 612,
            "user_agent.original": "Mozilla/5.0 (Windows NT 6.1; rv:15.0) Gecko/20120716 Firefox/15.0a2",
        },
    ),
    Case(
        'X-Forwarded-For="..." appended to the combined format: ignored',
        INTEGRATIONS_APACHE,
        b'192.0.2.77 - - [17/May/2022:21:41:43 +0000] "GET / HTTP/1.1" 200 45 "-" "curl/7.79.1" '
        b'X-Forwarded-For="192.168.0.2"',
        ok(
            "2022-05-17T21:41:43Z",
            "192.0.2.77",
            200,
            http_request_method="GET",
            url_original="/",
            http_version="1.1",
            http_response_body_bytes=45,
            user__agent_original="curl/7.79.1",
        ),
    ),
    Case(
        "A response time (%D) between size and referrer: skipped, referrer and agent still read",
        INTEGRATIONS_APACHE,
        b"2001:db8:add:4002:91f2:a9b2:e09a:6fc6 - - [29/May/2017:19:02:48 +0000] "
        b'"GET /A%20Beka%20G1/15%20reading.mp4 HTTP/1.1" 200 612 3413 "-" "Mozilla/5.0 (Windows NT 6.1)"',
        ok(
            "2017-05-29T19:02:48Z",
            "2001:db8:add:4002:91f2:a9b2:e09a:6fc6",
            200,
            http_request_method="GET",
            url_original="/A%20Beka%20G1/15%20reading.mp4",
            http_version="1.1",
            http_response_body_bytes=612,
            user__agent_original="Mozilla/5.0 (Windows NT 6.1)",
        ),
    ),
    Case(
        "Virtual host without port before the combined format (vhost_common + combined tail)",
        BEATS_APACHE + "/test-vhost.log",
        b'vhost1.example.fr 192.0.2.123 - - [04/Jul/2019:09:20:46 +0200] "GET / HTTP/1.1" 200 32953 "-" "'
        + MOZ.encode()
        + b'"',
        ok(
            "2019-07-04T07:20:46Z",
            "192.0.2.123",
            200,
            http_request_method="GET",
            url_original="/",
            http_version="1.1",
            http_response_body_bytes=32953,
            user__agent_original=MOZ,
            destination_address="vhost1.example.fr",
            destination_domain="vhost1.example.fr",
        ),
    ),
    Case(
        "Debian's vhost_combined (%v:%p first, %O bytes), IPv6 client, HTTP/2.0 as mod_http2 logs it",
        "https://salsa.debian.org/apache-team/apache2/-/blob/master/debian/config-dir/apache2.conf.in ; "
        "https://httpd.apache.org/docs/2.4/howto/http2.html",
        b"www.example.org:443 2001:db8:85a3::8a2e:370:7334 - - [28/Oct/2015:14:03:07 +0100] "
        b'"GET /blog/?p=1 HTTP/2.0" 200 5120 "https://www.example.org/" "' + MOZ.encode() + b'"',
        ok(
            "2015-10-28T13:03:07Z",
            "2001:db8:85a3::8a2e:370:7334",
            200,
            http_request_method="GET",
            url_original="/blog/?p=1",
            http_version="2.0",
            http_response_body_bytes=5120,
            http_request_referrer="https://www.example.org/",
            user__agent_original=MOZ,
            destination_address="www.example.org",
            destination_domain="www.example.org",
            destination_port=443,
        ),
    ),
    Case(
        'Quotes inside the user agent, escaped by Apache as \\"',
        MOD_LOG_CONFIG,
        rb'203.0.113.9 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 512 "-" '
        rb'"Mozilla/5.0 (compatible; \"Quoted\" Agent/1.0)"',
        ok(
            "2015-10-28T14:03:07Z",
            "203.0.113.9",
            200,
            http_request_method="GET",
            url_original="/",
            http_version="1.1",
            http_response_body_bytes=512,
            user__agent_original='Mozilla/5.0 (compatible; "Quoted" Agent/1.0)',
        ),
    ),
    Case(
        "Escaped quote and backslash in the request; an agent that ends in a backslash",
        MOD_LOG_CONFIG,
        rb'203.0.113.9 - - [28/Oct/2015:14:03:07 +0000] "GET /search?q=\"a\\b\" HTTP/1.1" 200 77 '
        rb'"https://example.com/?x=\"y\"" "Agent\\"',
        ok(
            "2015-10-28T14:03:07Z",
            "203.0.113.9",
            200,
            http_request_method="GET",
            url_original='/search?q="a\\b"',
            http_version="1.1",
            http_response_body_bytes=77,
            http_request_referrer='https://example.com/?x="y"',
            user__agent_original="Agent\\",
        ),
    ),
    Case(
        "Non-ASCII bytes \\x-escaped by Apache (UTF-8 é in URL and agent): decoded",
        MOD_LOG_CONFIG,
        rb'198.51.100.7 - - [28/Oct/2015:14:03:07 +0000] "GET /caf\xc3\xa9?q=\xe2\x9c\x93 HTTP/1.1" 200 10 '
        rb'"-" "Mozilla/5.0 (Linux; Android 5.1; Caf\xc3\xa9Phone)"',
        ok(
            "2015-10-28T14:03:07Z",
            "198.51.100.7",
            200,
            http_request_method="GET",
            url_original="/café?q=✓",
            http_version="1.1",
            http_response_body_bytes=10,
            user__agent_original="Mozilla/5.0 (Linux; Android 5.1; CaféPhone)",
        ),
    ),
    Case(
        "Escaped bytes that are not UTF-8 stay as \\xhh text",
        MOD_LOG_CONFIG,
        rb'198.51.100.7 - - [28/Oct/2015:14:03:07 +0000] "GET /\xff\xfe%00 HTTP/1.1" 404 0 "-" "-"',
        ok(
            "2015-10-28T14:03:07Z",
            "198.51.100.7",
            404,
            http_request_method="GET",
            url_original="/\\xff\\xfe%00",
            http_version="1.1",
            http_response_body_bytes=0,
        ),
    ),
    Case(
        "Raw UTF-8 in the line (a server that does not escape, e.g. nginx escape=none)",
        "https://nginx.org/en/docs/http/ngx_http_log_module.html#log_format",
        '198.51.100.8 - - [28/Oct/2015:14:03:07 +0000] "GET /über/straße HTTP/1.1" 200 3 "-" "curl/8.5.0"'.encode(),
        ok(
            "2015-10-28T14:03:07Z",
            "198.51.100.8",
            200,
            http_request_method="GET",
            url_original="/über/straße",
            http_version="1.1",
            http_response_body_bytes=3,
            user__agent_original="curl/8.5.0",
        ),
    ),
    Case(
        "A raw byte that is not UTF-8 (Latin-1 é) becomes \\xe9 text, in the URL and in message",
        "https://nginx.org/en/docs/http/ngx_http_log_module.html#log_format",
        b'198.51.100.8 - - [28/Oct/2015:14:03:07 +0000] "GET /caf\xe9 HTTP/1.1" 404 0 "-" "-"',
        ok(
            "2015-10-28T14:03:07Z",
            "198.51.100.8",
            404,
            http_request_method="GET",
            url_original="/caf\\xe9",
            http_version="1.1",
            http_response_body_bytes=0,
        ),
    ),
    Case(
        "nginx's default escaping writes a quote as \\x22",
        "https://nginx.org/en/docs/http/ngx_http_log_module.html#log_format",
        rb'192.0.2.5 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 612 "-" "Mozilla \x22x\x22"',
        ok(
            "2015-10-28T14:03:07Z",
            "192.0.2.5",
            200,
            http_request_method="GET",
            url_original="/",
            http_version="1.1",
            http_response_body_bytes=612,
            user__agent_original='Mozilla "x"',
        ),
    ),
    Case(
        "A request target with a space (clients that do not encode it; HttpProtocolOptions Unsafe)",
        "https://httpd.apache.org/docs/2.4/mod/core.html#httpprotocoloptions",
        b'192.0.2.5 - - [28/Oct/2015:14:03:07 +0000] "GET /my file.html HTTP/1.1" 400 226 "-" "-"',
        ok(
            "2015-10-28T14:03:07Z",
            "192.0.2.5",
            400,
            http_request_method="GET",
            url_original="/my file.html",
            http_version="1.1",
            http_response_body_bytes=226,
        ),
    ),
    Case(
        "HTTP/0.9 simple request: method and URL, no version",
        "https://www.rfc-editor.org/rfc/rfc1945#section-4.1",
        b'192.0.2.5 - - [28/Oct/2015:14:03:07 +0000] "GET /" 200 45',
        ok(
            "2015-10-28T14:03:07Z",
            "192.0.2.5",
            200,
            http_request_method="GET",
            url_original="/",
            http_response_body_bytes=45,
        ),
    ),
    Case(
        "Asterisk-form target (OPTIONS *), no body",
        "https://www.rfc-editor.org/rfc/rfc9112#section-3.2.4",
        b'192.0.2.5 - - [28/Oct/2015:14:03:07 +0000] "OPTIONS * HTTP/1.1" 200 -',
        ok(
            "2015-10-28T14:03:07Z",
            "192.0.2.5",
            200,
            http_request_method="OPTIONS",
            url_original="*",
            http_version="1.1",
        ),
    ),
    Case(
        "Authority-form target (CONNECT host:port)",
        "https://www.rfc-editor.org/rfc/rfc9112#section-3.2.3",
        b'192.0.2.5 - - [28/Oct/2015:14:03:07 +0000] "CONNECT www.example.com:443 HTTP/1.1" 405 235',
        ok(
            "2015-10-28T14:03:07Z",
            "192.0.2.5",
            405,
            http_request_method="CONNECT",
            url_original="www.example.com:443",
            http_version="1.1",
            http_response_body_bytes=235,
        ),
    ),
    Case(
        "Absolute-form target (a proxy request)",
        "https://www.rfc-editor.org/rfc/rfc9112#section-3.2.2",
        b'192.0.2.5 - - [28/Oct/2015:14:03:07 +0000] "GET http://www.example.com/index.html HTTP/1.1" 200 1024',
        ok(
            "2015-10-28T14:03:07Z",
            "192.0.2.5",
            200,
            http_request_method="GET",
            url_original="http://www.example.com/index.html",
            http_version="1.1",
            http_response_body_bytes=1024,
        ),
    ),
    Case(
        '304 Not Modified: %b writes "-" for no bytes',
        MOD_LOG_CONFIG,
        b'192.0.2.5 - - [28/Oct/2015:14:03:07 +0000] "GET /feed.xml HTTP/1.1" 304 - "-" "Wget/1.16 (linux-gnu)"',
        ok(
            "2015-10-28T14:03:07Z",
            "192.0.2.5",
            304,
            http_request_method="GET",
            url_original="/feed.xml",
            http_version="1.1",
            user__agent_original="Wget/1.16 (linux-gnu)",
        ),
    ),
    Case(
        'An empty user name is logged as "" (mod_log_config.c, log_remote_user): no user.name',
        "https://github.com/apache/httpd/blob/trunk/modules/loggers/mod_log_config.c",
        b'192.0.2.5 - "" [28/Oct/2015:14:03:07 +0000] "GET /private/ HTTP/1.1" 401 381',
        ok(
            "2015-10-28T14:03:07Z",
            "192.0.2.5",
            401,
            http_request_method="GET",
            url_original="/private/",
            http_version="1.1",
            http_response_body_bytes=381,
        ),
    ),
    Case(
        "identd name and user both present (%l and %u)",
        INTEGRATIONS_APACHE,
        b'127.0.0.1 user-identity frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
        ok(
            "2000-10-10T20:55:36Z",
            "127.0.0.1",
            200,
            user_name="frank",
            http_request_method="GET",
            url_original="/apache_pb.gif",
            http_version="1.0",
            http_response_body_bytes=2326,
        ),
    ),
    Case(
        "Client logged as address:port",
        INTEGRATIONS_APACHE,
        b'127.0.0.1:80 - - [13/Nov/2023:10:44:01 +0000] "GET / HTTP/1.1" 400 3386 "-" "-"',
        ok(
            "2023-11-13T10:44:01Z",
            "127.0.0.1",
            400,
            source_address="127.0.0.1:80",
            source_port=80,
            http_request_method="GET",
            url_original="/",
            http_version="1.1",
            http_response_body_bytes=3386,
        ),
    ),
    Case(
        "IPv4-mapped IPv6 client (a dual-stack listener)",
        "https://httpd.apache.org/docs/2.4/bind.html#ipv6",
        b'::ffff:192.0.2.10 - - [28/Oct/2015:14:03:07 +0000] "HEAD / HTTP/1.1" 200 -',
        ok(
            "2015-10-28T14:03:07Z",
            "::ffff:192.0.2.10",
            200,
            http_request_method="HEAD",
            url_original="/",
            http_version="1.1",
        ),
    ),
    Case(
        "Link-local IPv6 client with a zone index: source.ip without the zone",
        "https://www.rfc-editor.org/rfc/rfc4007#section-11",
        b'fe80::1%eth0 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 5',
        ok(
            "2015-10-28T14:03:07Z",
            "fe80::1",
            200,
            source_address="fe80::1%eth0",
            http_request_method="GET",
            url_original="/",
            http_version="1.1",
            http_response_body_bytes=5,
        ),
    ),
    Case(
        "A long URL (8 KB; LimitRequestLine allows 8190 bytes by default)",
        "https://httpd.apache.org/docs/2.4/mod/core.html#limitrequestline",
        b'192.0.2.5 - - [28/Oct/2015:14:03:07 -0800] "GET ' + LONG_TARGET + b' HTTP/1.1" 414 250 "-" "-"',
        ok(
            "2015-10-28T22:03:07Z",
            "192.0.2.5",
            414,
            http_request_method="GET",
            url_original=LONG_TARGET.decode(),
            http_version="1.1",
            http_response_body_bytes=250,
        ),
    ),
    Case(
        "Quotes not escaped (Apache before 2.0.46, or other servers): the lenient reading",
        MOD_LOG_CONFIG,
        b'192.0.2.5 - - [28/Oct/2015:14:03:07 +0000] "GET /a"b HTTP/1.0" 200 5 "-" "Mozilla "x" y"',
        ok(
            "2015-10-28T14:03:07Z",
            "192.0.2.5",
            200,
            http_request_method="GET",
            url_original='/a"b',
            http_version="1.0",
            http_response_body_bytes=5,
            user__agent_original='Mozilla "x" y',
        ),
    ),
    Case(
        "A status code that is not three digits",
        MOD_LOG_CONFIG,
        b'192.0.2.5 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 2x0 5 "-" "-"',
        "bad status code '2x0'",
    ),
    Case(
        "A size that is not a number",
        MOD_LOG_CONFIG,
        b'192.0.2.5 - - [28/Oct/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 12k "-" "-"',
        "bad response size '12k'",
    ),
    Case(
        "A date that does not exist",
        MOD_LOG_CONFIG,
        b'192.0.2.5 - - [31/Feb/2015:14:03:07 +0000] "GET / HTTP/1.1" 200 5 "-" "-"',
        "timestamp '31/Feb/2015:14:03:07 +0000' does not match",
    ),
    Case(
        "An error-log line is no access-log line",
        LOGS_DOC + "#errorlog",
        b"[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration: "
        b"/export/home/live/ap/htdocs/test",
        "does not match the combined, common or vhost_combined format",
    ),
    Case(
        "mod_ssl's ssl_request_log format is another format",
        "https://github.com/elastic/beats/blob/main/filebeat/module/apache/access/test/ssl-request.log",
        b'[10/Aug/2018:09:45:56 +0200] 172.30.0.119 TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 "GET /index.php HTTP/1.1" 1375',
        "does not match the combined, common or vhost_combined format",
    ),
    Case(
        "A JSON log line",
        "https://httpd.apache.org/docs/2.4/mod/mod_log_config.html#logformat",
        b'{"time":"2015-10-28T14:03:07Z","status":200}',
        "does not match the combined, common or vhost_combined format",
    ),
    Case("An empty record", "(none: Kafka values can be empty)", b"", "does not match"),
]
