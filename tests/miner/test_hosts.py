"""Dataset hosts: what a miner uploads, a validator can fetch.

S3Host runs against moto's S3 server on 127.0.0.1 through boto3, and the validator's
Fetcher then reads the objects anonymously over HTTP, exactly as it would from a public
bucket. LocalDirHost writes into a real directory; HuggingFaceHost is checked at its API
boundary with a recording stand-in for huggingface_hub.HfApi.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from d3.commitment import parse_locator
from d3.dev.synthetic import synthetic_table
from d3.miner import hosts
from d3.miner.hosts import HostError, HuggingFaceHost, LocalDirHost, S3Host
from d3.shards import ShardLimits, decode_shard, encode_shard
from d3.validator.fetcher import Fetcher, FetchError, FetchLimits, NotYetAvailable

FAST = FetchLimits(deadline_s=10.0, connect_timeout_s=2.0, read_timeout_s=5.0, retries=0)


@pytest.fixture(scope="module")
def shard() -> Any:
    return encode_shard(synthetic_table(200, seed=3))


async def fetch(locator_text: str, name: str, *, s3_endpoint: str | None = None) -> bytes:
    fetcher = Fetcher(FAST, s3_endpoint=s3_endpoint, allow_file=True, allow_private=True)
    try:
        return await fetcher.fetch(parse_locator(locator_text), name, max_bytes=64 << 20)
    finally:
        await fetcher.close()


# -- S3 against a real emulator ---------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server_mod = pytest.importorskip("moto.server")
    pytest.importorskip("boto3")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials for boto3's default chain, and nothing from the developer's ~/.aws."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "miner-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "miner-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def admin(endpoint: str) -> Any:
    """The operator's own client, for what they set up once: the bucket and its policy."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="admin",
        aws_secret_access_key="admin",
    )


def public_read(bucket: str, prefix: str) -> str:
    """The bucket policy operators add so validators can read the prefix anonymously."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "D3ValidatorsRead",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/{prefix}*",
                }
            ],
        }
    )


def test_validator_reads_what_the_miner_published_to_s3(
    s3_endpoint: str, aws_env: None, shard: Any
) -> None:
    bucket, prefix = "d3-miner-one", "net4/shards"
    locator = f"s3://{bucket}/{prefix}"
    s3 = admin(s3_endpoint)
    s3.create_bucket(Bucket=bucket)
    manifest = json.dumps({"shards": [shard.sha256]}).encode()

    async def body() -> None:
        host = S3Host(locator, endpoint_url=s3_endpoint, region="us-east-1")
        assert not await host.exists(shard.name)
        await host.upload(shard.name, shard.data)
        await host.upload(shard.name, shard.data)  # a retried upload is harmless
        await host.upload("m.json", manifest)
        assert await host.exists(shard.name) and await host.exists("m.json")
        assert not await host.exists("other.parquet")

        url = parse_locator(locator).url_for(shard.name, s3_endpoint)
        assert url == f"{s3_endpoint}/{bucket}/{prefix}/{shard.name}"
        # Private until the operator opens the prefix: the validator is refused for good.
        with pytest.raises(FetchError) as refused:
            await fetch(locator, shard.name, s3_endpoint=s3_endpoint)
        assert "403" in str(refused.value) and not refused.value.transient

        s3.put_bucket_policy(Bucket=bucket, Policy=public_read(bucket, prefix + "/"))
        data = await fetch(locator, shard.name, s3_endpoint=s3_endpoint)
        assert data == shard.data
        table = decode_shard(data, ShardLimits(), expected_sha256=shard.sha256)
        assert table.num_rows == shard.rows
        assert await fetch(locator, "m.json", s3_endpoint=s3_endpoint) == manifest
        with pytest.raises(NotYetAvailable):
            await fetch(locator, "not-uploaded-yet.parquet", s3_endpoint=s3_endpoint)

    asyncio.run(body())
    head = s3.head_object(Bucket=bucket, Key=f"{prefix}/m.json")
    assert head["ContentType"] == "application/json"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == sorted([f"{prefix}/{shard.name}", f"{prefix}/m.json"])


def test_s3_bucket_root_and_object_acl(s3_endpoint: str, aws_env: None) -> None:
    """A locator without a prefix puts files at the bucket root; a public-read object
    ACL (the other way operators open a bucket) is enough for the validator too."""
    bucket = "d3-miner-root"
    s3 = admin(s3_endpoint)
    s3.create_bucket(Bucket=bucket)

    async def body() -> bytes:
        host = S3Host(f"s3://{bucket}", endpoint_url=s3_endpoint, region="us-east-1")
        await host.upload("a.parquet", b"shard bytes")
        s3.put_object_acl(Bucket=bucket, Key="a.parquet", ACL="public-read")
        return await fetch(f"s3://{bucket}", "a.parquet", s3_endpoint=s3_endpoint)

    assert asyncio.run(body()) == b"shard bytes"


def test_s3_upload_failure_is_a_host_error(s3_endpoint: str, aws_env: None) -> None:
    host = S3Host("s3://no-such-bucket-here/x", endpoint_url=s3_endpoint, region="us-east-1")
    with pytest.raises(HostError, match=r"s3 upload of a\.parquet failed") as info:
        asyncio.run(host.upload("a.parquet", b"x"))
    assert info.value.transient
    assert asyncio.run(host.exists("a.parquet")) is False


def test_s3_without_boto3_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(HostError, match=r"pip install 'd3-subnet\[s3\]'") as info:
        S3Host("s3://bucket/prefix")
    assert not info.value.transient


# -- a local directory ------------------------------------------------------------------


def test_local_dir_upload_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The target appears only by rename, complete and synced; until then it is absent."""
    host = LocalDirHost(tmp_path / "host")
    target = host.directory / "s.parquet"
    data = os.urandom(1 << 20)
    real_replace, real_fsync = os.replace, os.fsync
    synced: list[int] = []
    renames: list[tuple[str, str]] = []

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    def replace(src: str, dst: str | Path) -> None:
        assert not target.exists(), "the target was visible before the rename"
        assert Path(src).read_bytes() == data and synced, "renamed before complete and synced"
        assert Path(src).parent == host.directory  # same filesystem: rename is atomic
        renames.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(hosts.os, "fsync", fsync)
    monkeypatch.setattr(hosts.os, "replace", replace)
    asyncio.run(host.upload("s.parquet", data))
    assert renames == [(renames[0][0], str(target))]
    assert target.read_bytes() == data
    assert [p.name for p in host.directory.iterdir()] == ["s.parquet"]


def test_local_dir_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = LocalDirHost(tmp_path / "host")

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(hosts.os, "fsync", broken_fsync)
    with pytest.raises(HostError, match="Input/output error") as info:
        asyncio.run(host.upload("s.parquet", b"half a shard"))
    assert info.value.transient
    assert list(host.directory.iterdir()) == []  # no target, no temporary file


def test_local_dir_reupload_is_idempotent_and_names_stay_inside(tmp_path: Path) -> None:
    host = LocalDirHost(tmp_path / "host")

    async def body() -> None:
        await host.upload("s.parquet", b"same bytes")
        await host.upload("s.parquet", b"same bytes")
        await host.upload("../escape.json", b"{}")
        assert await host.exists("s.parquet") and await host.exists("escape.json")
        assert not await host.exists("missing.parquet")

    asyncio.run(body())
    assert sorted(p.name for p in host.directory.iterdir()) == ["escape.json", "s.parquet"]
    assert (host.directory / "s.parquet").read_bytes() == b"same bytes"
    assert not (tmp_path / "escape.json").exists()


def test_validator_reads_a_local_dir_through_file_locator(tmp_path: Path, shard: Any) -> None:
    host = LocalDirHost(tmp_path / "host")
    assert host.locator.text == f"file://{host.directory}"
    asyncio.run(host.upload(shard.name, shard.data))
    assert asyncio.run(fetch(host.locator.text, shard.name)) == shard.data


# -- Hugging Face at its API boundary ---------------------------------------------------


class RecordingHfApi:
    """huggingface_hub.HfApi's upload_file / file_exists, keyword rules included."""

    def __init__(self) -> None:
        self.uploads: list[dict[str, Any]] = []
        self.checks: list[tuple[str, str, dict[str, Any]]] = []
        self.files: set[tuple[str, str, str]] = set()
        self.fail: Exception | None = None

    def upload_file(
        self,
        *,
        path_or_fileobj: bytes,
        path_in_repo: str,
        repo_id: str,
        repo_type: str | None = None,
        revision: str | None = None,
        commit_message: str | None = None,
    ) -> str:
        if self.fail is not None:
            raise self.fail
        self.uploads.append(
            {
                "data": path_or_fileobj,
                "path_in_repo": path_in_repo,
                "repo_id": repo_id,
                "repo_type": repo_type,
                "revision": revision,
                "commit_message": commit_message,
            }
        )
        self.files.add((repo_id, revision or "main", path_in_repo))
        return f"https://huggingface.co/datasets/{repo_id}/blob/{revision}/{path_in_repo}"

    def file_exists(
        self,
        repo_id: str,
        filename: str,
        *,
        repo_type: str | None = None,
        revision: str | None = None,
    ) -> bool:
        if self.fail is not None:
            raise self.fail
        self.checks.append((repo_id, filename, {"repo_type": repo_type, "revision": revision}))
        return (repo_id, revision or "main", filename) in self.files


@pytest.mark.parametrize(
    ("locator", "revision"), [("hf:d3-org/tweets", "main"), ("hf:d3-org/tweets@v1", "v1")]
)
def test_hugging_face_uploads_to_the_dataset_repo(locator: str, revision: str) -> None:
    api = RecordingHfApi()
    host = HuggingFaceHost(locator, api=api)

    async def body() -> tuple[bool, bool]:
        before = await host.exists("s.parquet")
        await host.upload("s.parquet", b"shard")
        return before, await host.exists("s.parquet")

    assert asyncio.run(body()) == (False, True)
    assert api.uploads == [
        {
            "data": b"shard",
            "path_in_repo": "s.parquet",
            "repo_id": "d3-org/tweets",
            "repo_type": "dataset",
            "revision": revision,
            "commit_message": "D3: add s.parquet",
        }
    ]
    assert api.checks[-1] == (
        "d3-org/tweets",
        "s.parquet",
        {"repo_type": "dataset", "revision": revision},
    )
    url = host.locator.url_for("s.parquet")
    assert url == f"https://huggingface.co/datasets/d3-org/tweets/resolve/{revision}/s.parquet"


def test_hugging_face_failures() -> None:
    api = RecordingHfApi()
    api.fail = RuntimeError("503 Service Unavailable")
    host = HuggingFaceHost("hf:d3-org/tweets", api=api)
    with pytest.raises(HostError, match=r"hugging face upload of s\.parquet failed: 503"):
        asyncio.run(host.upload("s.parquet", b"x"))
    assert asyncio.run(host.exists("s.parquet")) is False


def test_hugging_face_without_the_package_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(HostError, match=r"pip install 'd3-subnet\[hf\]'") as info:
        HuggingFaceHost("hf:d3-org/tweets")
    assert not info.value.transient


# -- locators ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: S3Host("hf:d3-org/tweets", client=object()), "not an s3:// locator"),
        (lambda tmp: S3Host("https://example.com/d3", client=object()), "not an s3:// locator"),
        (lambda tmp: S3Host("s3://Bad_Bucket", client=object()), "not s3://bucket"),
        (lambda tmp: HuggingFaceHost("s3://bucket/p", api=object()), "not an hf:owner/repo"),
        (lambda tmp: HuggingFaceHost("hf:no-repo", api=object()), "not hf:owner/repo"),
        (lambda tmp: LocalDirHost(tmp, public_locator="s3://bucket/p"), "file:// or http"),
        (lambda tmp: LocalDirHost(tmp, public_locator="hf:o/r"), "file:// or http"),
        (lambda tmp: LocalDirHost(tmp, public_locator="file://relative"), "absolute path"),
    ],
)
def test_hosts_refuse_locators_of_another_kind(tmp_path: Path, make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(tmp_path)


def test_local_dir_served_over_http_keeps_its_public_locator(tmp_path: Path) -> None:
    host = LocalDirHost(tmp_path, public_locator="https://data.example.org/d3")
    assert host.locator.url_for("s.parquet") == "https://data.example.org/d3/s.parquet"
