"""A real Apache Kafka 4.x broker (KRaft combined mode, one JVM) whose client listener is SASL_SSL.

The listener takes SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 over TLS with a PEM certificate the caller
issued (see :func:`make_tls`, which makes a throw-away CA and a broker certificate for 127.0.0.1/localhost);
the controller listener stays PLAINTEXT on loopback. Users and passwords are given to :func:`start`: PLAIN users
in the listener's JAAS configuration, SCRAM users written into the metadata log when storage is formatted
(``kafka.tools.StorageTool format --add-scram``), as ``kafka-storage.sh format --add-scram`` does. The jars, the
base properties and the log set-up are those of :mod:`devstack.kafka`; only the listeners and security
settings differ.
"""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack import kafka
from devstack.process import (
    ROOT,
    Service,
    ServiceError,
    free_port,
    java_home,
    maven_classpath,
    port_answers,
    spawn,
)

ADMIN = "logtap-broker-admin"  # the broker's own SASL user (inter-broker PLAIN), also used for readiness
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SCRAM_ITERATIONS = 4096  # Kafka's minimum and default


@dataclass(frozen=True)
class Tls:
    """PEM files of a throw-away CA and a broker certificate (with its unencrypted PKCS#8 key)."""

    ca: Path  # the CA certificate: the clients' ``ssl.ca.location``
    keystore: Path  # the broker's key and certificate chain in one PEM file (``ssl.keystore.type=PEM``)


def make_tls(directory: Path, name: str = "logtap-dev") -> Tls:
    """A new CA and a broker certificate signed by it, for ``127.0.0.1`` and ``localhost``, valid one day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    valid_from, valid_to = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1)

    def subject(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(subject(f"{name} CA"))
        .issuer_name(subject(f"{name} CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject(f"{name} broker"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(ca=directory / f"{name}-ca.pem", keystore=directory / f"{name}-broker.pem")
    tls.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tls.keystore.write_bytes(
        key_pem
        + cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    return tls


def _jaas_value(text: str) -> str:
    """A JAAS option value in double quotes (Kafka's parser takes backslash escapes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _properties(port: int, controller_port: int, data: Path, tls: Tls, users: Mapping[str, str]) -> str:
    """:func:`devstack.kafka._properties` with a SASL_SSL client listener instead of PLAINTEXT."""
    plain_users = " ".join(f"user_{name}={_jaas_value(password)}" for name, password in users.items())
    admin_password = users[ADMIN]
    overrides = {
        "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f"username={_jaas_value(ADMIN)} password={_jaas_value(admin_password)} {plain_users};"
        ),
        **{
            f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
            for m in MECHANISMS[1:]
        },
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls.keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls.ca),
        "ssl.endpoint.identification.algorithm": "https",
    }
    lines = []
    for line in kafka._properties(port, controller_port, data).splitlines():
        key = line.split("=", 1)[0]
        if key not in overrides:
            lines.append(line)
    lines += [f"{key}={value}" for key, value in overrides.items()]
    return "\n".join(lines) + "\n"


def client_config(service: Service, mechanism: str, username: str, password: str) -> dict[str, str]:
    """librdkafka settings for ``service`` as ``username`` with ``mechanism``."""
    return {
        "bootstrap.servers": service.info["bootstrap"],
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": mechanism,
        "sasl.username": username,
        "sasl.password": password,
        "ssl.ca.location": service.info["ca"],
    }


def start(workdir: Path, users: Mapping[str, str], tls: Tls | None = None, attempts: int = 3) -> Service:
    """Format fresh storage under ``workdir`` and start a SASL_SSL broker for ``users`` (name -> password; each
    may log in with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512); returns once ``ADMIN`` is served metadata.

    ``service.info``: ``bootstrap``, ``ca`` (the CA file clients trust) and ``admin_password``.
    """
    users = dict(users)
    for name, password in users.items():
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ServiceError(f"user name {name!r}: letters, digits, '-' and '_' only")
        if any(c in password for c in ",]=") or not password:
            raise ServiceError(
                f"user {name!r}: a non-empty password without ',', ']' or '=' (--add-scram syntax)"
            )
    users.setdefault(ADMIN, f"admin-{kafka._cluster_id()}")
    tls = tls or make_tls(workdir / "tls")
    classpath = maven_classpath(ROOT / "dev" / "kafka", "kafka")
    java = str(Path(java_home(17), "bin", "java"))
    scram = [
        f"--add-scram={m}=[name={name},password={password},iterations={SCRAM_ITERATIONS}]"
        for name, password in users.items()
        for m in MECHANISMS[1:]
    ]
    last: Exception | None = None
    for _ in range(attempts):
        p, cp = free_port(), free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        props = workdir / f"server-secure-{p}.properties"
        props.write_text(_properties(p, cp, workdir / f"kafka-data-{p}", tls, users))
        log4j = workdir / f"log4j2-secure-{p}.properties"
        log4j.write_text(kafka.LOG4J2.format(log=workdir / f"kafka-secure-server-{p}.log"))
        jvm = [
            java,
            "-Xms256m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={log4j}",
            "-Djava.awt.headless=true",
            "-cp",
            classpath,
        ]
        formatted = subprocess.run(
            kafka.format_command(jvm, kafka._cluster_id(), props, *scram),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if formatted.returncode != 0:
            last = ServiceError(f"kafka-storage format failed: {formatted.stderr.strip()[-2000:]}")
            continue
        service = spawn("kafka-secure", [*jvm, "kafka.Kafka", str(props)], workdir / f"kafka-secure-{p}.log")
        service.ports = {"kafka": p, "controller": cp}
        service.info = {"bootstrap": f"127.0.0.1:{p}", "ca": str(tls.ca), "admin_password": users[ADMIN]}
        admin = client_config(service, "PLAIN", ADMIN, users[ADMIN])
        try:
            service.wait_ready(lambda a=admin: _serves_metadata(a), timeout=90)
            return service
        except ServiceError as exc:  # a port taken between free_port() and bind: other ports
            service.stop()
            last = exc
    raise ServiceError(f"Kafka (SASL_SSL) did not start: {last}")


def _serves_metadata(config: Mapping[str, str]) -> bool:
    from confluent_kafka.admin import AdminClient

    host, port = config["bootstrap.servers"].rsplit(":", 1)
    if not port_answers(int(port), host):
        return False
    md = AdminClient({**config, "logger": _quiet}).list_topics(timeout=2)
    return bool(md.brokers)


class _Quiet:
    """A librdkafka logger that drops its lines (connection refusals while the broker starts)."""

    def log(self, *args: object) -> None:
        pass


_quiet = _Quiet()
