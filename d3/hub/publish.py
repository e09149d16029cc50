"""Publishing a hub (or an export): to a local directory (one a static web server serves),
a Hugging Face dataset repo, or an S3 bucket. Each publish sends only what the destination
lacks, checks every file against the source's index, and sends the index last (the card
with it, so it is always current).

- **Local directory**: files already there with the right hash are skipped; the index is
  replaced last, atomically, so a reader never sees an index naming a missing file.
- **Hugging Face**: one Hub commit per publish with every new or changed file, the card,
  the index and its signature. A commit is atomic on the Hub, so a crash leaves the last
  commit whole and the next publish sends the same diff again; nothing is committed twice
  (the remote index says what the repo holds).
- **S3**: objects carry their SHA-256 as metadata (`x-amz-meta-sha256`); one that is
  already there with the right hash is skipped, so a publish interrupted after some
  uploads resumes with the rest. The index goes last.

In every case rerunning a publish that completed sends nothing. Data files the index no
longer lists (a day's period files, once the day is closed and its part files replace
them) are removed: after the new index is in place (local, S3: so the index never names a
missing file), or in the same commit (Hugging Face).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from d3.hub.errors import HubCorrupt
from d3.hub.layout import (
    CARD_NAME,
    DATA_DIR,
    INDEX_NAME,
    SIGNATURE_NAME,
    sha256_hex,
    verify_copy,
    write_atomic,
)


@dataclass
class PublishReport:
    copied: int = 0  # data files and card sent
    skipped: int = 0  # already at the destination with the right bytes
    bytes: int = 0
    commits: int = 0  # Hugging Face: Hub commits made (0 or 1)
    removed: int = 0  # data files the index no longer lists, deleted at the destination


def publish_local(source: Path, destination: Path) -> PublishReport:
    raw = (source / INDEX_NAME).read_bytes()  # the exact bytes: the signature is over them
    index = json.loads(raw)
    report = PublishReport()
    for entry in [*index["files"], index["card"]]:
        target = destination / entry["path"]
        if target.exists() and sha256_hex(target.read_bytes()) == entry["sha256"]:
            report.skipped += 1
            continue
        data = (source / entry["path"]).read_bytes()
        if len(data) != entry["bytes"] or sha256_hex(data) != entry["sha256"]:
            raise HubCorrupt(f"{entry['path']}: the source does not match its index")
        write_atomic(target, data)
        report.copied += 1
        report.bytes += len(data)
    write_atomic(destination / INDEX_NAME, raw)
    signature = source / SIGNATURE_NAME
    if signature.exists():
        write_atomic(destination / SIGNATURE_NAME, signature.read_bytes())
    listed = {entry["path"] for entry in index["files"]}
    data = destination / DATA_DIR
    for path in sorted(data.rglob("*")) if data.exists() else []:
        if path.is_file() and path.relative_to(destination).as_posix() not in listed:
            path.unlink()
            report.removed += 1
    for day in data.iterdir() if data.exists() else []:
        if day.is_dir() and not any(day.iterdir()):
            day.rmdir()
    verify_copy(destination)
    return report


def _source(source: Path) -> tuple[bytes, dict]:
    """The source's index bytes (the signature is over exactly these) and its entries,
    each file checked against it before anything is sent."""
    raw = (source / INDEX_NAME).read_bytes()
    index = json.loads(raw)
    for entry in [*index["files"], index["card"]]:
        path = source / entry["path"]
        if (
            path.stat().st_size != entry["bytes"]
            or sha256_hex(path.read_bytes()) != entry["sha256"]
        ):
            raise HubCorrupt(f"{entry['path']}: the source does not match its index")
    return raw, index


def _tail(source: Path) -> list[str]:
    """What goes last: the index, then its signature when there is one."""
    return [INDEX_NAME] + ([SIGNATURE_NAME] if (source / SIGNATURE_NAME).exists() else [])


def publish_hf(
    source: Path, repo_id: str, api: Any = None, revision: str = "main", token: str | None = None
) -> PublishReport:
    """One commit to the dataset repo `repo_id` with everything its last index lacks."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    raw, index = _source(source)
    remote: dict[str, str] = {}
    if api.file_exists(repo_id, INDEX_NAME, repo_type="dataset", revision=revision):
        with tempfile.TemporaryDirectory() as cache:
            path = api.hf_hub_download(
                repo_id, INDEX_NAME, repo_type="dataset", revision=revision, cache_dir=cache
            )
            theirs = json.loads(Path(path).read_bytes())
        remote = {e["path"]: e["sha256"] for e in [*theirs["files"], theirs["card"]]}
    report = PublishReport()
    operations = []
    for entry in [*index["files"], index["card"]]:
        if remote.get(entry["path"]) == entry["sha256"]:
            report.skipped += 1
            continue
        operations.append(
            CommitOperationAdd(
                path_in_repo=entry["path"], path_or_fileobj=str(source / entry["path"])
            )
        )
        report.copied += 1
        report.bytes += entry["bytes"]
    listed = {entry["path"] for entry in index["files"]}
    for path in sorted(p for p in remote if p.startswith(f"{DATA_DIR}/") and p not in listed):
        operations.append(CommitOperationDelete(path_in_repo=path))
        report.removed += 1
    if not operations and remote:
        return report  # the repo already has this index's every file
    for name in _tail(source):
        data = raw if name == INDEX_NAME else (source / name).read_bytes()
        operations.append(CommitOperationAdd(path_in_repo=name, path_or_fileobj=data))
    api.create_commit(
        repo_id,
        operations,
        commit_message=f"D3 hub: {index['rows']:,} rows in {len(index['files'])} files",
        repo_type="dataset",
        revision=revision,
    )
    report.commits = 1
    return report


def publish_s3(source: Path, bucket: str, client: Any, prefix: str = "") -> PublishReport:
    """Upload to `bucket` (under `prefix`) what it lacks, then the index."""
    raw, index = _source(source)
    base = prefix.strip("/")
    report = PublishReport()

    def key(path: str) -> str:
        return f"{base}/{path}" if base else path

    def stored_sha(path: str) -> str | None:
        try:
            head = client.head_object(Bucket=bucket, Key=key(path))
        except Exception:  # botocore's ClientError for 404, and its many transport errors
            return None
        return head.get("Metadata", {}).get("sha256")

    for entry in [*index["files"], index["card"]]:
        if stored_sha(entry["path"]) == entry["sha256"]:
            report.skipped += 1
            continue
        kind = "text/markdown" if entry["path"] == CARD_NAME else "application/vnd.apache.parquet"
        with open(source / entry["path"], "rb") as body:
            client.put_object(
                Bucket=bucket,
                Key=key(entry["path"]),
                Body=body,
                ContentType=kind,
                Metadata={"sha256": entry["sha256"]},
            )
        report.copied += 1
        report.bytes += entry["bytes"]
    for name in _tail(source):
        data = raw if name == INDEX_NAME else (source / name).read_bytes()
        client.put_object(
            Bucket=bucket,
            Key=key(name),
            Body=data,
            ContentType="application/json",
            Metadata={"sha256": sha256_hex(data)},
        )
    # Then what the index no longer lists: listed from the bucket, not from the previous
    # index, so a publish that died here still removes them the next time.
    listed = {key(entry["path"]) for entry in index["files"]}
    stale: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = client.list_objects_v2(Bucket=bucket, Prefix=key(f"{DATA_DIR}/"), **token)
        stale += [o["Key"] for o in page.get("Contents", []) if o["Key"] not in listed]
        if not page.get("IsTruncated"):
            break
        token = {"ContinuationToken": page["NextContinuationToken"]}
    for start in range(0, len(stale), 1000):  # DeleteObjects takes up to 1,000 keys
        batch = [{"Key": k} for k in stale[start : start + 1000]]
        client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    report.removed = len(stale)
    return report
