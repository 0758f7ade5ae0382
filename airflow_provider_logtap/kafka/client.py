"""librdkafka configuration for logtap's clients, derived from the user's connection configuration, and the
route of librdkafka's own log into Python logging."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from airflow_provider_logtap.errors import ConfigurationError, LogtapError

log = logging.getLogger(__name__)
LIBRDKAFKA_LOGGER = "airflow_provider_logtap.librdkafka"

# Settings logtap owns: a range read never commits or resets by itself.
_READER_FIXED = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "error",
    "enable.partition.eof": True,
}
# Defaults that bound a reader's memory whatever the range size, tuned for throughput (measured with
# bench/s3_archive.py): librdkafka's default 1 MiB per-partition fetch beats larger fetches here, and a short
# fetch-queue backoff keeps the prefetch queue from idling a whole second after it was full.
_READER_DEFAULTS = {
    "isolation.level": "read_committed",
    "queued.max.messages.kbytes": 32768,
    "fetch.queue.backoff.ms": 10,
    "fetch.wait.max.ms": 100,
}
_NOT_FOR_CONSUMERS = ("group.instance.id", "partition.assignment.strategy")
_replaced_groups: set[tuple[str, str, str]] = set()  # (connection, its group.id, the tap's): warned once


def reader_config(base: Mapping[str, Any], group_id: str, *, connection: str | None = None) -> dict[str, Any]:
    """A consumer configuration for ``assign()`` reads and explicit commits as ``group_id``.

    A ``group.id`` in ``base`` (the connection's extra) is replaced by ``group_id``: a tap reads and commits as
    its own group. That is logged as a WARNING once per process, naming both ids.
    """
    config = {**_READER_DEFAULTS, **dict(base)}
    for key in _NOT_FOR_CONSUMERS:
        config.pop(key, None)
    config.update(_READER_FIXED)
    theirs = base.get("group.id")
    if theirs not in (None, "", group_id):
        seen = (connection or "", str(theirs), group_id)
        if seen not in _replaced_groups:
            _replaced_groups.add(seen)
            log.warning(
                "%sthe connection's group.id %r is replaced by the tap's group %r; grant group ACLs for %r",
                f"Kafka connection {connection!r}: " if connection else "",
                theirs,
                group_id,
                group_id,
            )
    config["group.id"] = group_id
    return config


def admin_config(base: Mapping[str, Any]) -> dict[str, Any]:
    """An admin-client configuration (consumer-only keys dropped)."""
    consumer_only = {
        "group.id",
        "enable.auto.commit",
        "auto.offset.reset",
        "enable.auto.offset.store",
        "isolation.level",
        "fetch.max.bytes",
        "max.partition.fetch.bytes",
        "queued.max.messages.kbytes",
        "queued.min.messages",
        "fetch.queue.backoff.ms",
        "enable.partition.eof",
        "session.timeout.ms",
        "max.poll.interval.ms",
        "fetch.min.bytes",
        "fetch.wait.max.ms",
        "auto.commit.interval.ms",
        "on_commit",
        *_NOT_FOR_CONSUMERS,
    }
    return {k: v for k, v in base.items() if k not in consumer_only}


class KafkaUnreachableError(LogtapError):
    """No broker of a Kafka connection answered. Retryable on purpose: a broker that is down or restarting
    comes back, and Airflow's retries are the right tool for that; a wrong address fails each retry with the
    same message, which says what to check."""


# Errors that mean "no broker answers", as opposed to a broker that answered with an error.
UNREACHABLE_CODES = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError._WAIT_COORD,
        KafkaError._AUTHENTICATION,
        KafkaError._SSL,
    }
)
# A broker that answered and refused this client: its SASL credentials, or a TLS certificate either side does not
# trust (librdkafka reports a failed certificate check as a transport or SSL error, the words say which).
_CERTIFICATE = re.compile(r"certificate", re.IGNORECASE)


def refusal_kind(err: KafkaError) -> str | None:
    """``"sasl"`` or ``"tls"`` when ``err`` says a broker refused this client's security settings."""
    if err.code() == KafkaError._AUTHENTICATION:
        return "sasl"
    if err.code() in (KafkaError._SSL, KafkaError._TRANSPORT) and _CERTIFICATE.search(err.str()):
        return "tls"
    return None


class KafkaSecurityRefusedError(ConfigurationError):
    """A broker of a Kafka connection answered and refused its security settings: SASL authentication failed
    (wrong mechanism, user or password) or TLS did not verify (a CA that did not sign the broker's certificate,
    a certificate without the host's name). Not retried: a retry sends the same settings. The message names the
    connection, its mechanism and user, never the password."""


# A repeated duration inside a line ("after 0ms in state CONNECT") does not make it a different line.
_DURATION = re.compile(r"\b\d+ms\b")
_CLIENT_NAME = re.compile(r"rdkafka#(consumer|producer)-\d+")


@dataclass
class _Window:
    started: float
    text: str
    repeats: int = 0


class LibrdkafkaLog:
    """The ``logger`` of logtap's librdkafka clients (confluent-kafka's ``logger`` setting), and their
    ``error_cb``.

    confluent-kafka calls :meth:`log` with librdkafka's syslog level already mapped to logging's (0-2
    CRITICAL, 3 ERROR, 4 WARNING, 5-6 INFO, 7 DEBUG); each line goes to the ``airflow_provider_logtap.librdkafka``
    logger at that level instead of librdkafka's stderr (which Airflow shows as ERROR). The same line within
    ``window`` seconds is logged once; its repeats as one line "... (repeated N times in Ts)" when the window
    has passed and the line comes again, or at :meth:`flush`. Connection failures are kept for
    :meth:`unreachable`'s message.

    confluent-kafka delivers these lines when the client is polled (consume, poll, close), in that thread.
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        window: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger or logging.getLogger(LIBRDKAFKA_LOGGER)
        self.window = window
        self.clock = clock
        self.last_failure: str | None = None  # the last "cannot reach / cannot talk to a broker" line
        self.refused: tuple[str, str] | None = None  # (kind, librdkafka's text) of a security refusal
        self._windows: dict[tuple[int, str], _Window] = {}
        self._lock = threading.Lock()

    def log(self, level: int, msg: str, *args: Any) -> None:
        """confluent-kafka's call: ``log(level, "%s [%s] %s", facility, client name, text)``."""
        text = msg % args if args else msg
        if level >= logging.ERROR or (args and args[0] in ("FAIL", "ERROR")):
            self.last_failure = str(args[2]) if len(args) >= 3 else text
        self.emit(level, text)

    def error(self, err: KafkaError) -> None:
        """confluent-kafka's ``error_cb``: remember connection failures; librdkafka logs them as FAIL lines
        already, so these go at DEBUG."""
        if err.code() in UNREACHABLE_CODES and err.code() != KafkaError._ALL_BROKERS_DOWN:
            self.last_failure = err.str()
        if (kind := refusal_kind(err)) is not None and self.refused is None:
            self.refused = (kind, err.str())
        self.emit(logging.DEBUG, f"error {err.name()}: {err.str()}")

    def emit(self, level: int, text: str) -> None:
        key = (level, _CLIENT_NAME.sub("rdkafka#client", _DURATION.sub("#ms", text)))
        now = self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now - window.started < self.window:
                window.repeats += 1
                return
            self._windows[key] = _Window(started=now, text=text)
            if len(self._windows) > 256:
                self._prune(now)
        if window is not None and window.repeats:
            self._summary(level, window, now, repeats=window.repeats + 1)
        else:
            self.logger.log(level, "librdkafka: %s", text)

    def flush(self) -> None:
        """Log the repeats still counted (at the end of an operation, before an error is raised)."""
        now = self.clock()
        with self._lock:
            pending = [(key[0], w, w.repeats) for key, w in self._windows.items() if w.repeats]
            for _level, w, _repeats in pending:
                w.repeats = 0
        for level, w, repeats in pending:
            self._summary(level, w, now, repeats)

    def _summary(self, level: int, window: _Window, now: float, repeats: int) -> None:
        self.logger.log(
            level, "librdkafka: %s (repeated %d times in %.0fs)", window.text, repeats, now - window.started
        )

    def _prune(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if now - w.started >= self.window and not w.repeats]:
            del self._windows[key]

    def routed(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with this log as its ``logger`` and ``error_cb`` (a connection's own ``error_cb`` is
        still called)."""
        out = dict(config)
        out.setdefault("logger", self)
        theirs = out.get("error_cb")
        if callable(theirs) and theirs is not self.error:

            def both(err: KafkaError) -> None:
                self.error(err)
                theirs(err)

            out["error_cb"] = both
        else:
            out["error_cb"] = self.error
        return out

    def unreachable(
        self, connection: str, servers: str, waited: float | None = None
    ) -> KafkaUnreachableError:
        """The error for a connection none of whose brokers answered, with what to check."""
        within = f" within {waited:.0f}s" if waited is not None else ""
        seen = f" (librdkafka: {self.last_failure})" if self.last_failure else ""
        return KafkaUnreachableError(
            f"Kafka connection {connection!r} (bootstrap.servers {servers}): no broker answered{within}{seen}. "
            "Check that the brokers are up; that bootstrap.servers has the right host and port; that the "
            "brokers' listeners / advertised.listeners name an address this machine can reach (a broker "
            "answers the bootstrap with its advertised address); and that the connection's security "
            "settings (security.protocol, sasl.*, ssl.*) match the broker's listener. The task is retried: "
            "a broker that is down may come back."
        )


def refused_error(
    connection: str, config: Mapping[str, Any], refused: tuple[str, str]
) -> KafkaSecurityRefusedError:
    """The error for a connection whose broker refused its security settings, with what to check (built from
    the connection's non-secret settings only)."""
    kind, text = refused
    servers = config.get("bootstrap.servers", "?")
    protocol = config.get("security.protocol", "plaintext")
    if kind == "sasl":
        mechanism = config.get("sasl.mechanism") or config.get("sasl.mechanisms") or "GSSAPI"
        user = config.get("sasl.username")
        fix = (
            f"the broker refused SASL authentication (security.protocol {protocol}, sasl.mechanism {mechanism}"
            + (f", sasl.username {user!r}" if user else "")
            + "). Check the connection's sasl.mechanism, sasl.username and sasl.password: the user must exist "
            "on the broker for that mechanism (SCRAM credentials are kept per mechanism, PLAIN users in the "
            "broker's JAAS configuration), and the mechanism must be in the listener's sasl.enabled.mechanisms."
        )
    else:
        fix = (
            f"TLS did not verify (security.protocol {protocol}, ssl.ca.location "
            f"{config.get('ssl.ca.location') or '(the system CA store)'}). Check that ssl.ca.location is the CA "
            "that signed the broker's certificate, and that the certificate names the host in bootstrap.servers "
            "(or set ssl.endpoint.identification.algorithm to none, which stops checking the name)."
        )
    return KafkaSecurityRefusedError(
        f"Kafka connection {connection!r} (bootstrap.servers {servers}): {fix} librdkafka: {text}. "
        "Not retried: a retry sends the same settings."
    )


def kafka_error_code(exc: BaseException) -> int | None:
    """The librdkafka error code an exception carries (itself or a cause), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KafkaException) and seen.args and isinstance(seen.args[0], KafkaError):
            return int(seen.args[0].code())
        seen = seen.__cause__ or seen.__context__
    return None
