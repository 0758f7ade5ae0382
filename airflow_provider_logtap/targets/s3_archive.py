"""The ``s3_archive`` target: the byte-exact raw archive in S3 (the "uh oh" copy)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import model_validator

from airflow_provider_logtap.core import naming
from airflow_provider_logtap.errors import one_of
from airflow_provider_logtap.models import SettingError, checked, setting
from airflow_provider_logtap.sinks.archive import DEFAULT_MAX_BYTES, ArchiveFormat
from airflow_provider_logtap.sinks.base import Sink
from airflow_provider_logtap.targets.base import Codec, Compression, TargetModel

#: S3's server-side encryption modes (``ServerSideEncryption`` of PutObject, CreateMultipartUpload, CopyObject).
SSE_MODES = ("AES256", "aws:kms", "aws:kms:dsse")


def _sse(mode: str | None) -> None:
    if mode is not None:
        one_of("server_side_encryption", mode, SSE_MODES)


def _prefix(prefix: str) -> str:
    return naming.clean_relative(prefix, "prefix")


#: botocore settings of the archive's S3 client unless the connection's ``config_kwargs`` set them: the
#: "standard" retry mode (exponential backoff with jitter, at most 20 s between attempts; 500/502/503/504,
#: throttling such as 503 SlowDown, dropped connections and timeouts are retried) with 6 attempts in all, and
#: bounded connect/read timeouts, so a store that keeps failing fails the write within a few minutes.
S3_CLIENT_DEFAULTS: dict[str, Any] = {
    "retries": {"mode": "standard", "max_attempts": 6},
    "connect_timeout": 10,
    "read_timeout": 60,
}


def s3_client(aws_conn_id: str) -> Any:
    """A boto3 S3 client of an Airflow AWS connection (through the amazon provider's ``S3Hook``), with
    :data:`S3_CLIENT_DEFAULTS` under what the connection's ``config_kwargs`` set."""
    import botocore.config
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    own = S3Hook(aws_conn_id=aws_conn_id).conn_config.botocore_config
    config = botocore.config.Config(**S3_CLIENT_DEFAULTS)
    if own is not None:
        config = config.merge(own)
    return S3Hook(aws_conn_id=aws_conn_id, config=config).get_conn()


class S3ArchiveTarget(TargetModel, Codec):
    """The byte-exact S3 archive: objects
    ``s3://<bucket>/<prefix>/<topic>/partition=<p>/<topic>+<p>+<start:020d>.log.gz`` whose decompressed content
    is the record values, each followed by ``\\n``, in offset order, named by the offset they start at.
    Re-running a range overwrites the same keys and removes what an earlier attempt left inside the range.
    A replay writes under ``<prefix>/replays/<name>``."""

    type: Literal["s3_archive"] = "s3_archive"
    operator: ClassVar[str] = "airflow_provider_logtap.operators.s3.KafkaToS3ArchiveOperator"
    bucket: Annotated[str, checked(naming.check_bucket)] = setting(
        description="The S3 bucket (its bare name).", templated=True, example="logtap-archive"
    )
    prefix: Annotated[str, checked(_prefix)] = setting(
        "", description="The key prefix ('' for the bucket root); no '..' or wildcards.", templated=True
    )
    aws_conn_id: str = setting(
        "aws_default",
        description="The Airflow AWS connection (its extra may set endpoint_url for S3-compatible stores, and "
        "config_kwargs botocore's retries and timeouts; unset: standard retries, 6 attempts, 10 s to connect, 60 s "
        "to read).",
    )
    compression: Compression = setting("gzip", description="gzip, zstd or none.")
    max_records_per_object: int | None = setting(
        None, description="Cut objects after this many records; null: no record limit.", ge=1
    )
    max_bytes_per_object: int | None = setting(
        DEFAULT_MAX_BYTES, description="Cut objects at this uncompressed size in bytes; null: no limit.", ge=1
    )
    server_side_encryption: Annotated[str | None, checked(_sse)] = setting(
        None,
        description="S3 server-side encryption of every object: AES256, aws:kms or aws:kms:dsse (sent on each "
        "PUT, multipart upload and metadata copy); null: the bucket's default encryption.",
        example="aws:kms",
    )
    sse_kms_key_id: str | None = setting(
        None,
        description="The KMS key (id, ARN or alias) of aws:kms / aws:kms:dsse encryption; null: the account's "
        "AWS managed key.",
    )

    @model_validator(mode="after")
    def _kms_key_needs_kms(self) -> S3ArchiveTarget:
        if self.sse_kms_key_id is not None and not (self.server_side_encryption or "").startswith("aws:kms"):
            raise SettingError(
                "sse_kms_key_id",
                "sse_kms_key_id needs server_side_encryption aws:kms or aws:kms:dsse. Got server_side_encryption "
                f"{self.server_side_encryption!r}",
            )
        return self

    def encryption_args(self) -> dict[str, str]:
        """The encryption arguments of every request that creates an object."""
        args = (
            {}
            if self.server_side_encryption is None
            else {"ServerSideEncryption": self.server_side_encryption}
        )
        if self.sse_kms_key_id is not None:
            args["SSEKMSKeyId"] = self.sse_kms_key_id
        return args

    @property
    def asset_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def archive_format(self) -> ArchiveFormat:
        return ArchiveFormat(
            compression=self.compression,
            level=self.compression_level,
            max_records=self.max_records_per_object,
            max_bytes=self.max_bytes_per_object,
        )

    def build_sink(self, *, run: str, only_partitions: tuple[str, ...] = ()) -> Sink:
        from airflow_provider_logtap.sinks.s3 import S3ArchiveSink

        return S3ArchiveSink(
            client=s3_client(self.aws_conn_id),
            bucket=self.bucket,
            prefix=self.prefix,
            archive_format=self.archive_format(),
            run=run,
            object_args=self.encryption_args(),
        )

    def relocated(self, name: str) -> S3ArchiveTarget:
        return self.replaced(
            prefix="/".join(p for p in (naming.clean_prefix(self.prefix), "replays", name) if p)
        )
