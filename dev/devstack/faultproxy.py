"""A fault-injecting HTTP/1.1 proxy in front of a real server, for tests (never used by the product).

``FaultProxy(upstream)`` listens on a free loopback port and forwards every request to ``upstream``
(``http://127.0.0.1:<port>``), byte for byte (the ``Host`` header is kept, so S3 signatures stay valid). Rules
added from the test process make chosen requests fail instead::

    with FaultProxy("http://127.0.0.1:9000") as proxy:
        proxy.fail(method="PUT", path=r"[?&]partNumber=", status=503, body=SLOW_DOWN, times=2)
        proxy.fail(method="POST", path=r"/_bulk", reset_response_after=20)      # the server did the work
        proxy.fail(path=r"op=CREATE", reset_request_after=1000)                 # the upload is cut
        proxy.fail(path=r"/_bulk", delay=2.0)                                   # slower than the timeout
        ... drive the client against proxy.url ...
        assert proxy.injected() == 5

A rule matches a request by method and a regex searched in its target (path and query); it applies to the
next ``times`` matching requests (``None``: all of them) and counts what it injected. Faults:

- ``status``: answer this status (with ``body`` and ``headers``) without asking the server;
- ``delay``: forward, then hold the server's response this many seconds before passing it on;
- ``reset_request_after``: read this many bytes of the request body, then reset the connection (the server
  never sees the request);
- ``reset_response_after``: forward the request, then pass on only this many bytes of the server's response
  and reset the connection (the server did the work; the client does not know);
- ``rewrite``: pass the server's response body through this function (e.g. mark some bulk items 429).

Redirects to another server (WebHDFS's NameNode answers ``307`` with the DataNode's ``Location``) are
rewritten to go through the proxy too (``/_faultproxy/<host>:<port>/...``), so DataNode traffic can be
faulted like the rest; rules see the DataNode request's own path. ``Expect: 100-continue`` is answered by the
proxy itself. Each request opens its own connection to the server. Loopback servers only.
"""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO
from urllib.parse import urlsplit

ROUTE = "/_faultproxy/"
_LOOPBACK = ("127.", "localhost", "[::1]")


@dataclass(frozen=True)
class Fault:
    """What a rule does to a matching request (see the module docstring)."""

    status: int | None = None
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    reset_request_after: int | None = None
    reset_response_after: int | None = None
    rewrite: Callable[[bytes], bytes] | None = None


@dataclass
class Rule:
    """Requests matching ``method`` (``None``: any) and the regex ``path`` get ``fault``, ``times`` times."""

    method: str | None
    path: re.Pattern[str]
    header: re.Pattern[str] | None
    fault: Fault
    times: int | None
    hits: int = 0

    def take(self, method: str, target: str, headers: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if not self.path.search(target):
            return False
        if self.header is not None and not self.header.search(headers):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


@dataclass(frozen=True)
class Seen:
    """One request the proxy received, and what it did with it ("forwarded" or the fault's kind)."""

    method: str
    target: str
    upstream: str
    action: str
    at: float = field(default_factory=time.monotonic)  # when it was answered (time.monotonic())


@dataclass
class _State:
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    injected: int = 0
    clients: set[socket.socket] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FaultProxy:
    """A running proxy to ``upstream``; :meth:`stop` (or leaving the ``with`` block) ends it."""

    def __init__(self, upstream: str, host: str = "127.0.0.1") -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        if not parts.netloc.startswith(_LOOPBACK):
            raise ValueError(f"the fault proxy fronts loopback servers only, got {upstream!r}")
        self.upstream = parts.netloc
        self.state = _State()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with proxy.state.lock:
                    proxy.state.clients.add(self.request)
                try:
                    _serve(proxy, self.request)
                finally:
                    with proxy.state.lock:
                        proxy.state.clients.discard(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server((host, 0), Handler)
        self.host, self.port = host, int(self.server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="faultproxy", daemon=True)
        self.thread.start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop accepting, close the client connections still open (kept alive), end the server thread."""
        self.server.shutdown()
        with self.state.lock:
            clients = list(self.state.clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        self.server.server_close()
        self.thread.join(5)

    def fail(
        self,
        *,
        method: str | None = None,
        path: str = "",
        header: str = "",
        times: int | None = 1,
        status: int | None = None,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        reset_request_after: int | None = None,
        reset_response_after: int | None = None,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> Rule:
        """Add a rule (checked in the order added; the first that matches applies). ``header``: a regex that
        must also be found in the request's headers, one ``name: value`` a line (names lower-case)."""
        fault = Fault(
            status=status,
            body=body.encode() if isinstance(body, str) else body,
            headers=tuple((headers or {}).items()),
            delay=delay,
            reset_request_after=reset_request_after,
            reset_response_after=reset_response_after,
            rewrite=rewrite,
        )
        kinds = [status is not None, reset_request_after is not None, reset_response_after is not None]
        kinds.append(rewrite is not None)
        if sum(kinds) > 1 or (not any(kinds) and not delay):
            raise ValueError(
                "a rule has one of status, reset_request_after, reset_response_after, rewrite (or a delay)"
            )
        rule = Rule(
            method=method,
            path=re.compile(path),
            header=re.compile(header, re.MULTILINE) if header else None,
            fault=fault,
            times=times,
        )
        with self.state.lock:
            self.state.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule (what was seen stays)."""
        with self.state.lock:
            self.state.rules.clear()

    def seen(self, method: str | None = None, path: str = "") -> list[Seen]:
        """The requests received so far (matching ``method`` and the regex ``path``), in order."""
        pattern = re.compile(path)
        with self.state.lock:
            return [
                s
                for s in self.state.seen
                if (method is None or s.method == method) and pattern.search(s.target)
            ]

    def injected(self) -> int:
        """How many faults the rules have taken on so far (counted when a request matches, so a delayed
        answer counts while it is still held; :meth:`clear` keeps the count)."""
        with self.state.lock:
            return self.state.injected

    def _match(self, method: str, target: str, headers: list[tuple[str, str]]) -> Fault | None:
        text = "".join(f"{k.lower()}: {v}\n" for k, v in headers)
        with self.state.lock:
            for rule in self.state.rules:
                if rule.take(method, target, text):
                    self.state.injected += 1
                    return rule.fault
            return None

    def _record(self, seen: Seen) -> None:
        with self.state.lock:
            self.state.seen.append(seen)


# --- the protocol side -------------------------------------------------------------------------------------


class _Closed(Exception):
    pass


def _read_head(reader: IO[bytes]) -> list[bytes] | None:
    lines = []
    while True:
        line = reader.readline(65537)
        if not line:
            if lines:
                raise _Closed
            return None
        if line in (b"\r\n", b"\n"):
            if not lines:
                continue  # stray CRLF between requests
            return lines
        lines.append(line)


def _headers(lines: list[bytes]) -> list[tuple[str, str]]:
    out = []
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        out.append((name.strip(), value.strip()))
    return out


def _get(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def _body(reader: IO[bytes], headers: list[tuple[str, str]], limit: int | None = None) -> Iterator[bytes]:
    """The raw body (chunked framing kept) in pieces; stops early after ``limit`` bytes when given."""
    sent = 0
    if (_get(headers, "transfer-encoding") or "").lower() == "chunked":
        while True:
            size_line = reader.readline(1024)
            if not size_line:
                raise _Closed
            yield size_line
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    trailer = reader.readline(65537)
                    if not trailer:
                        raise _Closed
                    yield trailer
                    if trailer in (b"\r\n", b"\n"):
                        return
            remaining = size + 2
            while remaining:
                piece = reader.read(min(remaining, 65536))
                if not piece:
                    raise _Closed
                remaining -= len(piece)
                sent += len(piece)
                yield piece
                if limit is not None and sent >= limit:
                    return
        return
    length = _get(headers, "content-length")
    remaining = int(length) if length is not None else 0
    while remaining:
        step = min(remaining, 65536)
        if limit is not None:
            step = min(step, max(limit - sent, 1))
        piece = reader.read(step)
        if not piece:
            raise _Closed
        remaining -= len(piece)
        sent += len(piece)
        yield piece
        if limit is not None and sent >= limit:
            return


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed peer or a broken middlebox does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _status_response(fault: Fault) -> bytes:
    reason = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway"}.get(
        fault.status or 0,
        {503: "Service Unavailable", 504: "Gateway Timeout"}.get(fault.status or 0, "Fault"),
    )
    head = [f"HTTP/1.1 {fault.status} {reason}", f"Content-Length: {len(fault.body)}"]
    head += [f"{k}: {v}" for k, v in fault.headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + fault.body


def _serve(proxy: FaultProxy, client: socket.socket) -> None:
    reader = client.makefile("rb")
    try:
        while _one(proxy, client, reader):
            pass
    except (_Closed, OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            reader.close()
            client.close()


def _one(proxy: FaultProxy, client: socket.socket, reader: IO[bytes]) -> bool:
    """Serve one request; whether the client connection stays open for another."""
    head = _read_head(reader)
    if head is None:
        return False
    method, target, _version = head[0].decode("latin-1").split(" ", 2)
    headers = _headers(head)
    upstream = proxy.upstream
    if target.startswith(ROUTE):
        hostport, _, rest = target[len(ROUTE) :].partition("/")
        if not hostport.startswith(_LOOPBACK):
            raise ValueError(f"not a loopback server: {hostport}")
        upstream, target = hostport, "/" + rest
    fault = proxy._match(method, target, headers)
    expect = (_get(headers, "expect") or "").lower() == "100-continue"
    if expect:
        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    keep = [(k, v) for k, v in headers if k.lower() not in ("expect", "connection", "keep-alive")]

    if fault is not None and fault.reset_request_after is not None:
        for _piece in _body(reader, headers, limit=fault.reset_request_after):
            pass
        proxy._record(Seen(method, target, upstream, "reset_request"))
        _reset(client)
        return False
    if fault is not None and fault.status is not None:
        for _piece in _body(reader, headers):
            pass
        proxy._record(Seen(method, target, upstream, f"status {fault.status}"))
        client.sendall(_status_response(fault))
        return True

    request_head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in keep)
    request_head += "Connection: close\r\n\r\n"
    host, port = upstream.rsplit(":", 1)
    with socket.create_connection((host.strip("[]"), int(port)), timeout=120) as up:
        up.sendall(request_head.encode("latin-1"))
        for piece in _body(reader, headers):
            up.sendall(piece)
        response, close = _response(up, method, proxy, upstream, fault.rewrite if fault else None)
    action = "forwarded"
    if fault is not None and fault.rewrite is not None:
        action = "rewrite"
    if fault is not None and fault.delay:
        action = f"delay {fault.delay}"
        time.sleep(fault.delay)
    if fault is not None and fault.reset_response_after is not None:
        proxy._record(Seen(method, target, upstream, "reset_response"))
        client.sendall(response[: fault.reset_response_after])
        _reset(client)
        return False
    proxy._record(Seen(method, target, upstream, action))
    client.sendall(response)
    return not close


def _response(
    up: socket.socket,
    method: str,
    proxy: FaultProxy,
    upstream: str,
    rewrite: Callable[[bytes], bytes] | None = None,
) -> tuple[bytes, bool]:
    """The server's whole raw response (``Location`` rewritten to come back through the proxy; the body
    through ``rewrite``, if given), and whether the client connection must close after it (no framing but
    the end of the connection)."""
    reader = up.makefile("rb")
    while True:
        head = _read_head(reader)
        if head is None:
            raise _Closed
        status = int(head[0].split(b" ", 2)[1])
        if status >= 200 or status == 101:
            break  # 1xx interim answers are dropped (the proxy answered Expect itself)
    headers = _headers(head)
    out_headers = []
    for k, v in headers:
        if k.lower() == "location":
            v = _through(proxy, upstream, v)
        if k.lower() in ("connection", "keep-alive"):
            continue
        out_headers.append((k, v))
    framed = (
        method == "HEAD"
        or status in (204, 304)
        or _get(headers, "content-length") is not None
        or (_get(headers, "transfer-encoding") or "").lower() == "chunked"
    )
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif framed:
        body = b"".join(_body(reader, headers))
    else:
        body = reader.read()
    if rewrite is not None:
        if (_get(headers, "transfer-encoding") or "").lower() == "chunked":
            body = _dechunk(body)
        body = rewrite(body)
        out_headers = [
            (k, v) for k, v in out_headers if k.lower() not in ("content-length", "transfer-encoding")
        ]
        out_headers.append(("Content-Length", str(len(body))))
        framed = True
    status_line = head[0].decode("latin-1").rstrip("\r\n")
    text = status_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in out_headers)
    if not framed:
        text += "Connection: close\r\n"
    return (text + "\r\n").encode("latin-1") + body, not framed


def _through(proxy: FaultProxy, upstream: str, location: str) -> str:
    parts = urlsplit(location)
    if parts.scheme != "http" or not parts.netloc or parts.netloc == f"{proxy.host}:{proxy.port}":
        return location
    rest = location[len(f"{parts.scheme}://{parts.netloc}") :] or "/"
    if parts.netloc == upstream == proxy.upstream:
        return f"{proxy.url}{rest}"
    return f"{proxy.url}{ROUTE}{parts.netloc}{rest}"


def _dechunk(raw: bytes) -> bytes:
    out, rest = [], raw
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)
