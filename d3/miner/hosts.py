"""Dataset hosts: where a miner's shards and manifests are uploaded for validators to fetch.

A host only has to store files by name and serve them back; content addressing makes it
irrelevant whether the host is trusted. Each host knows its public `locator`, which goes
into the commitment. Uploads are idempotent (same name, same bytes), so a retried or
repeated upload after a crash is harmless.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from d3.commitment import Locator, LocatorKind, parse_locator


class HostError(Exception):
    """An upload failed; `transient` says whether a retry may succeed."""

    def __init__(self, message: str, transient: bool = True):
        super().__init__(message)
        self.transient = transient


class DatasetHost(Protocol):
    locator: Locator

    async def upload(self, name: str, data: bytes) -> None: ...

    async def exists(self, name: str) -> bool: ...


class LocalDirHost:
    """A directory, served by any static web server (or read directly via file://).

    Files appear atomically (written to a temporary name, fsynced, renamed), so a
    validator never reads half a shard.
    """

    def __init__(self, directory: str | Path, public_locator: str | None = None):
        self.directory = Path(directory).expanduser().resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.locator = parse_locator(public_locator or f"file://{self.directory}")
        if self.locator.kind not in (LocatorKind.FILE, LocatorKind.HTTP):
            raise ValueError("a local directory is published as file:// or http(s)://")

    async def upload(self, name: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, name, data)

    def _write(self, name: str, data: bytes) -> None:
        target = self.directory / Path(name).name
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            # Published files are for everyone: mkstemp makes them 0600, which a web server
            # running as another user cannot read (every validator would get a 403).
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise HostError(f"cannot write {target}: {exc.strerror}") from None

    async def exists(self, name: str) -> bool:
        return (self.directory / Path(name).name).exists()


class S3Host:
    """An S3-compatible bucket (AWS, R2, MinIO, ...) through boto3 (`pip install d3-subnet[s3]`).

    The objects must be publicly readable over HTTPS: validators fetch them anonymously.
    Credentials come from boto3's usual chain (environment, ~/.aws, instance role).
    """

    def __init__(
        self,
        locator: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ):
        self.locator = parse_locator(locator)
        if self.locator.kind is not LocatorKind.S3:
            raise ValueError(f"{locator!r} is not an s3:// locator")
        if client is None:
            try:
                import boto3
            except ImportError:
                raise HostError(
                    "S3 hosting needs boto3: pip install 'd3-subnet[s3]'", False
                ) from None
            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self._s3 = client

    def _key(self, name: str) -> str:
        prefix = self.locator.extra.strip("/")
        return f"{prefix}/{name}" if prefix else name

    async def upload(self, name: str, data: bytes) -> None:
        content_type = "application/json" if name.endswith(".json") else "application/octet-stream"
        try:
            await asyncio.to_thread(
                self._s3.put_object,
                Bucket=self.locator.target,
                Key=self._key(name),
                Body=data,
                ContentType=content_type,
            )
        except Exception as exc:  # botocore raises many types; all are reported the same way
            raise HostError(f"s3 upload of {name} failed: {exc}") from None

    async def exists(self, name: str) -> bool:
        try:
            await asyncio.to_thread(
                self._s3.head_object, Bucket=self.locator.target, Key=self._key(name)
            )
        except Exception:
            return False
        return True


class HuggingFaceHost:
    """A Hugging Face dataset repo (`pip install d3-subnet[hf]`); token from HF_TOKEN."""

    def __init__(self, locator: str, token: str | None = None, api: Any = None):
        self.locator = parse_locator(locator)
        if self.locator.kind is not LocatorKind.HF:
            raise ValueError(f"{locator!r} is not an hf:owner/repo locator")
        if api is None:
            try:
                from huggingface_hub import HfApi
            except ImportError:
                raise HostError(
                    "HF hosting needs huggingface_hub: pip install 'd3-subnet[hf]'", False
                ) from None
            api = HfApi(token=token)
        self._api = api

    async def upload(self, name: str, data: bytes) -> None:
        try:
            await asyncio.to_thread(
                self._api.upload_file,
                path_or_fileobj=data,
                path_in_repo=name,
                repo_id=self.locator.target,
                repo_type="dataset",
                revision=self.locator.extra,
                commit_message=f"D3: add {name}",
            )
        except Exception as exc:
            raise HostError(f"hugging face upload of {name} failed: {exc}") from None

    async def exists(self, name: str) -> bool:
        try:
            return await asyncio.to_thread(
                self._api.file_exists,
                self.locator.target,
                name,
                repo_type="dataset",
                revision=self.locator.extra,
            )
        except Exception:
            return False
