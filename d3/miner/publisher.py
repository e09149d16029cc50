"""Publishing: new rows → shards + signed manifest → commit on chain → upload.

The order is the protocol (DESIGN.md): the commitment goes on chain *before* the files are
visible, so the hash fixes the miner's priority before anyone can copy the data.

Crash safety: a batch of rows is claimed in the store, then its shards and manifest are
written to a local staging directory (fsynced) before anything is sent. Whatever happens
next, a restart finds the same staged bytes and carries on from where it stopped:
committing if the chain does not show the commitment yet, uploading what the host lacks,
and finally marking the batch published together with the new chain head. Rows are never
published twice, and a signed manifest is never re-signed (signatures are randomised, so
a re-signed manifest would have a different hash from the one already on chain).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from loguru import logger

from d3.chain.interface import Chain
from d3.commitment import Commitment
from d3.manifest import Manifest, Signer, build_manifest, parse_manifest
from d3.miner.hosts import DatasetHost, HostError
from d3.miner.store import TweetStore
from d3.retry import Backoff, retry
from d3.shards import encode_shard, shard_name

PARENT_KEY = "last_manifest"
UPLOAD_BACKOFF = Backoff(1.0, cap_s=60.0, jitter=0.5)  # between tries of one file's upload


class PublishError(Exception):
    """A publication step failed; the batch stays pending and is retried later."""


@dataclass(frozen=True)
class Published:
    manifest_sha256: str
    rows: int
    shards: int
    commit_block: int | None


def _staged_key(batch_id: int) -> str:
    return f"staged_manifest:{batch_id}"


class Publisher:
    BATCH_ROWS = 200_000  # the defaults, here and for the miner's flags
    SHARD_ROWS = 100_000

    def __init__(
        self,
        store: TweetStore,
        host: DatasetHost,
        chain: Chain,
        signer: Signer,
        netuid: int,
        staging_dir: str | Path,
        batch_rows: int = BATCH_ROWS,
        shard_rows: int = SHARD_ROWS,
        upload_retries: int = 4,
    ):
        self.store = store
        self.host = host
        self.chain = chain
        self.signer = signer
        self.netuid = netuid
        self.staging = Path(staging_dir)
        self.staging.mkdir(parents=True, exist_ok=True)
        self.batch_rows = batch_rows
        self.shard_rows = shard_rows
        self.upload_retries = upload_retries

    async def publish_once(self) -> Published | None:
        """Publish one batch (a pending one first); None when there is nothing new."""
        pending = await asyncio.to_thread(self.store.pending_batches)
        if pending:
            batch_id = pending[0]
            table = await asyncio.to_thread(self.store.batch_table, batch_id)
        else:
            batch = await asyncio.to_thread(self.store.claim_batch, self.batch_rows)
            if batch is None:
                return None
            batch_id, table = batch.batch_id, batch.table
        manifest = await self._staged_manifest(batch_id, table)
        log = logger.bind(manifest=manifest.sha256[:12], batch=batch_id)
        block = await self._commit(manifest, log)
        for ref in manifest.body.shards:
            await self._upload(shard_name(ref.sha256), log)
        await self._upload(manifest.name, log)  # last: a visible manifest has all its shards
        await asyncio.to_thread(
            self.store.mark_published, batch_id, manifest.sha256,
            meta={PARENT_KEY: manifest.sha256},
        )  # fmt: skip
        self._clear_staging(manifest)
        log.info("published {} rows in {} shards", manifest.body.rows, len(manifest.body.shards))
        return Published(manifest.sha256, manifest.body.rows, len(manifest.body.shards), block)

    async def _staged_manifest(self, batch_id: int, table: pa.Table) -> Manifest:
        staged = await asyncio.to_thread(self.store.get_meta, _staged_key(batch_id))
        if staged is not None:
            data = (self.staging / f"{staged}.json").read_bytes()
            return parse_manifest(data, expected_sha256=staged)
        table = table.sort_by("id")
        shards = [
            encode_shard(table.slice(start, self.shard_rows))
            for start in range(0, table.num_rows, self.shard_rows)
        ]
        parent = await asyncio.to_thread(self.store.get_meta, PARENT_KEY)
        manifest = build_manifest(self.signer, self.netuid, shards, parent)
        for shard in shards:
            await asyncio.to_thread(_write_durably, self.staging / shard.name, shard.data)
        await asyncio.to_thread(_write_durably, self.staging / manifest.name, manifest.to_bytes())
        await asyncio.to_thread(self.store.set_meta, _staged_key(batch_id), manifest.sha256)
        return manifest

    async def _commit(self, manifest: Manifest, log) -> int | None:
        text = Commitment(manifest.sha256, self.host.locator).encode()
        for record in await self.chain.commitments():
            if record.hotkey == self.chain.hotkey and record.data == text:
                return record.block  # committed before a restart
        verdict = await self.chain.commit(text)
        if not verdict.ok:
            raise PublishError(f"commit refused: {verdict.message}")
        log.info("committed at block {}", verdict.block)
        return verdict.block

    async def _upload(self, name: str, log) -> None:
        if await self.host.exists(name):
            return
        data = (self.staging / name).read_bytes()

        def retrying(error: Exception, wait: float) -> None:
            log.warning("upload of {} failed ({}); retry in {:.1f}s", name, error, wait)

        try:
            await retry(
                lambda: self.host.upload(name, data),
                UPLOAD_BACKOFF,
                attempts=self.upload_retries + 1,
                retryable=lambda error: isinstance(error, HostError) and error.transient,
                on_retry=retrying,
            )
        except HostError as error:
            raise PublishError(f"upload of {name} failed: {error}") from None

    def _clear_staging(self, manifest: Manifest) -> None:
        for name in [manifest.name, *(shard_name(r.sha256) for r in manifest.body.shards)]:
            (self.staging / name).unlink(missing_ok=True)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
