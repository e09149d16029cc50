"""Publishing a hub as it grows: to a Hugging Face dataset repo (checked at its API
boundary: one Hub commit per update, with every new file, the card and the index), and
to an S3 bucket on moto's emulator (only what is missing, resumable after a crash). The
hub closes its first day between the first and the last publish: the destination drops
the day's period files that its part file replaced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import bittensor as bt
import pytest

from d3.hub.cli import main
from d3.hub.layout import INDEX_NAME
from d3.hub.publish import publish_hf, publish_local, publish_s3
from tests.support.net import run

from .support import build_in_steps, published_files


@pytest.fixture
def snapshots(net, redis_url, tmp_path) -> list[Path]:
    async def body():
        async with bt.Subtensor("local", substrate=net.dev) as client:
            return await build_in_steps(net, client, redis_url, tmp_path / "hub", later=True)

    found = run(body())
    assert len(found) >= 2  # the hub grew in at least two updates
    assert "data/2025-12-31/period-00000000.parquet" in published_files(found[0])
    assert "data/2025-12-31/part-00000.parquet" in published_files(found[-1])  # closed
    return found


def _replaced(first: Path, last: Path) -> set[str]:
    """Data files of `first` that `last` no longer has (a closed day's period files)."""
    return {p for p in published_files(first) if p.startswith("data/")} - set(published_files(last))


class RecordingHub:
    """The part of `huggingface_hub.HfApi` publishing uses, over a dict of files, with
    every commit recorded. `fail_next` makes the next commit fail as a dropped
    connection would (the Hub applies a commit whole or not at all)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.commits: list[list[str]] = []
        self.fail_next = False

    def file_exists(self, repo_id, filename, *, repo_type=None, revision=None) -> bool:
        assert (repo_id, repo_type, revision) == ("d3/hub", "dataset", "main")
        return filename in self.files

    def hf_hub_download(self, repo_id, filename, *, repo_type=None, revision=None, cache_dir):
        path = Path(cache_dir) / filename
        path.write_bytes(self.files[filename])
        return str(path)

    def create_commit(self, repo_id, operations, *, commit_message, repo_type, revision):
        staged, deleted = {}, []
        for op in operations:
            if not hasattr(op, "path_or_fileobj"):  # CommitOperationDelete
                deleted.append(op.path_in_repo)
                continue
            source = op.path_or_fileobj
            staged[op.path_in_repo] = (
                source if isinstance(source, bytes) else Path(source).read_bytes()
            )
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("connection reset while committing")
        assert all(path in self.files for path in deleted)
        for path in deleted:
            del self.files[path]
        self.files.update(staged)
        self.commits.append(sorted(staged) + [f"-{path}" for path in sorted(deleted)])


def test_one_hub_commit_per_update_with_the_card_kept_current(snapshots):
    pytest.importorskip("huggingface_hub")
    api = RecordingHub()
    first, last = snapshots[0], snapshots[-1]
    report = publish_hf(first, "d3/hub", api)
    assert report.commits == 1 and len(api.commits) == 1
    assert api.files == {**published_files(first), "index.sig": (first / "index.sig").read_bytes()}
    assert publish_hf(first, "d3/hub", api).commits == 0  # nothing new: no empty commit
    api.fail_next = True
    with pytest.raises(ConnectionError):
        publish_hf(last, "d3/hub", api)
    assert len(api.commits) == 1  # the failed commit left nothing behind
    report = publish_hf(last, "d3/hub", api)
    [_, second] = api.commits
    old = set(published_files(first))
    new = {p for p in published_files(last) if p.startswith("data/")} - old
    gone = _replaced(first, last)
    assert gone and report.removed == len(gone)
    # Only what changed, the replaced files deleted in the same commit.
    assert set(second) == new | {"README.md", INDEX_NAME, "index.sig"} | {f"-{p}" for p in gone}
    kept = [p for p in old if p.startswith("data/") and p not in gone]
    assert report.skipped == len(kept)  # every old file still listed
    assert api.files == {**published_files(last), "index.sig": (last / "index.sig").read_bytes()}


def test_a_directory_follows_the_hub_as_a_day_closes(snapshots, tmp_path):
    first, last = snapshots[0], snapshots[-1]
    dest = tmp_path / "www"
    publish_local(first, dest)
    report = publish_local(last, dest)
    gone = _replaced(first, last)
    assert report.removed == len(gone) > 0
    assert published_files(dest) == published_files(last)  # verified, nothing left over
    assert publish_local(last, dest).removed == 0


@pytest.fixture(scope="module")
def s3() -> Iterator[object]:
    server_mod = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="hub",
        aws_secret_access_key="hub",
    )
    client.create_bucket(Bucket="d3-hub")
    client.endpoint = f"http://{host}:{port}"
    try:
        yield client
    finally:
        server.stop()


class Counting:
    """An S3 client that counts uploads per key and can die after `die_after` of them."""

    def __init__(self, client, die_after: int | None = None) -> None:
        self.client = client
        self.puts: dict[str, int] = {}
        self.die_after = die_after

    def head_object(self, **kwargs):
        return self.client.head_object(**kwargs)

    def list_objects_v2(self, **kwargs):
        return self.client.list_objects_v2(**kwargs)

    def delete_objects(self, **kwargs):
        return self.client.delete_objects(**kwargs)

    def put_object(self, **kwargs):
        if self.die_after is not None and sum(self.puts.values()) >= self.die_after:
            raise SystemExit("killed mid-publish")
        self.puts[kwargs["Key"]] = self.puts.get(kwargs["Key"], 0) + 1
        return self.client.put_object(**kwargs)


def test_s3_publishing_resumes_after_a_crash_and_sends_nothing_twice(
    snapshots, s3, monkeypatch, capsys
):
    first, last = snapshots[0], snapshots[-1]
    publish_s3(first, "d3-hub", s3, prefix="hub")
    dying = Counting(s3, die_after=1)
    with pytest.raises(SystemExit):
        publish_s3(last, "d3-hub", dying, prefix="hub")
    index = json.loads(s3.get_object(Bucket="d3-hub", Key="hub/index.json")["Body"].read())
    assert index == json.loads((first / INDEX_NAME).read_bytes())  # still the old one, whole
    resumed = Counting(s3)
    report = publish_s3(last, "d3-hub", resumed, prefix="hub")
    uploaded = {**dying.puts}
    for key, count in resumed.puts.items():
        uploaded[key] = uploaded.get(key, 0) + count
    data = [k for k in uploaded if k.startswith("hub/data/")]
    assert data and all(uploaded[k] == 1 for k in data)  # no data file sent twice
    gone = _replaced(first, last)
    old = [p for p in published_files(first) if p.startswith("data/") and p not in gone]
    assert report.skipped == len(old) + 1  # the old files, and the one sent before the crash
    for path, body in published_files(last).items():
        assert s3.get_object(Bucket="d3-hub", Key=f"hub/{path}")["Body"].read() == body
    listing = s3.list_objects_v2(Bucket="d3-hub", Prefix="hub/data/")["Contents"]
    stored = {o["Key"].removeprefix("hub/") for o in listing}
    assert stored == {p for p in published_files(last) if p.startswith("data/")}
    assert report.removed == len(gone) > 0  # the closed day's period files, after the index
    again = Counting(s3)
    publish_s3(last, "d3-hub", again, prefix="hub")
    assert set(again.puts) == {"hub/index.json", "hub/index.sig"}  # only the tail, always
    # The command line does the same, credentials from boto3's usual chain.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "hub")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hub")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    argv = ["publish", str(last), "s3://d3-hub/cli", "--s3-endpoint", s3.endpoint]
    assert main(argv) == 0
    assert "files sent" in capsys.readouterr().out
    assert (
        s3.get_object(Bucket="d3-hub", Key="cli/index.json")["Body"].read()
        == (last / INDEX_NAME).read_bytes()
    )
