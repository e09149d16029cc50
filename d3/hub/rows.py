"""One accepted commitment's rows, as its miner published them.

The validator keeps tweet IDs, not tweets, so the hub fetches the rows again from the
miner's host: the locator comes from the commitment on chain (at its own block), and the
manifest hash the verdict names pins every byte, so what the hub reads is exactly what the
validator verified or nothing at all.

A commitment brings its own manifest and the never-judged ancestors only it reached
through `parent`; the validator recorded each of those as judged with the commitment's
block. The hub walks the same chain back and keeps exactly the manifests judged accepted
at that block (an ancestor judged rejected is skipped, as the validator dropped it; a
manifest judged with another block, or never judged, ends the walk). Then, like the
pipeline: shards in manifest order (oldest first), each once; only the rows that earn
(`d3/earning.py`: fresh, no retweet); a tweet repeated within the commitment kept once,
at its first place.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from d3.chain.interface import Chain
from d3.commitment import Locator, UnreadableCommitment, decode_commitment
from d3.earning import earning_rows, first_fresh_id
from d3.hub.decisions import Accepted
from d3.hub.errors import RowsUnavailable
from d3.hub.schema import HUB_SCHEMA, with_provenance
from d3.manifest import MAX_MANIFEST_BYTES, Manifest, ManifestError, parse_manifest
from d3.shards import ShardError, ShardLimits, decode_shard, shard_name
from d3.validator.fetcher import Fetcher, FetchError
from d3.validator.scoring import ScoringParams
from d3.validator.state import ValidatorState


@dataclass(frozen=True)
class CommitmentRows:
    accepted: Accepted
    manifests: tuple[str, ...]  # the manifests it brought, oldest first
    table: pa.Table  # hub rows, fresh, each id once, in ingest order


class RowSource:
    def __init__(
        self,
        chain: Chain,
        state: ValidatorState,
        fetcher: Fetcher,
        scoring: ScoringParams,
        limits: ShardLimits | None = None,
    ):
        self.chain = chain
        self.state = state
        self.fetcher = fetcher
        self.scoring = scoring
        self.limits = limits or ShardLimits()
        self._times: dict[int, int] = {}

    async def rows(self, accepted: Accepted) -> CommitmentRows:
        locator = await self._locator(accepted)
        manifests = await self._walk(accepted, locator)
        first_fresh = first_fresh_id(await self.fresh_bound_ms(accepted.block))
        parts: list[pa.Table] = []
        done: set[str] = set()
        for manifest in manifests:
            for ref in manifest.body.shards:
                if ref.sha256 in done:
                    continue
                done.add(ref.sha256)
                try:
                    data = await self.fetcher.fetch(locator, shard_name(ref.sha256), ref.bytes)
                    table = decode_shard(data, self.limits, expected_sha256=ref.sha256)
                except (FetchError, ShardError) as error:
                    raise RowsUnavailable(f"shard {ref.sha256[:12]}: {error}") from None
                table = earning_rows(table, first_fresh)  # as the index credited them
                parts.append(
                    with_provenance(table, accepted.hotkey, manifest.sha256, accepted.block)
                )
        table = pa.concat_tables(parts) if parts else HUB_SCHEMA.empty_table()
        return CommitmentRows(accepted, tuple(m.sha256 for m in manifests), _first_of_each(table))

    async def _locator(self, accepted: Accepted) -> Locator:
        record = await self.chain.commitment_of(accepted.hotkey, accepted.block)
        if record is None or record.block != accepted.block:
            raise RowsUnavailable(
                f"no commitment of {accepted.hotkey[:10]} at block {accepted.block} on chain"
            )
        decoded = decode_commitment(record.data)
        if isinstance(decoded, UnreadableCommitment):
            raise RowsUnavailable(f"commitment at block {accepted.block}: {decoded.reason}")
        if decoded.manifest_sha256 != accepted.manifest_sha256:
            raise RowsUnavailable(
                f"commitment at block {accepted.block} names another manifest than its verdict"
            )
        return decoded.locator

    async def _walk(self, accepted: Accepted, locator: Locator) -> list[Manifest]:
        chain: list[Manifest] = []
        sha: str | None = accepted.manifest_sha256
        seen: set[str] = set()
        while sha is not None and sha not in seen:
            seen.add(sha)
            judged = await self.state.judgement(accepted.hotkey, sha)
            if judged is None or judged.block != accepted.block:
                if sha == accepted.manifest_sha256:
                    raise RowsUnavailable(f"manifest {sha[:12]} has no judgement at its block")
                break  # another commitment's ground, or beyond what the validator walked
            manifest = await self._manifest(locator, sha)
            if judged.accepted:
                chain.append(manifest)
            sha = manifest.body.parent
        chain.reverse()
        return chain

    async def _manifest(self, locator: Locator, sha: str) -> Manifest:
        try:
            data = await self.fetcher.fetch(locator, f"{sha}.json", MAX_MANIFEST_BYTES)
            return parse_manifest(data, sha)
        except (FetchError, ManifestError) as error:
            raise RowsUnavailable(f"manifest {sha[:12]}: {error}") from None

    async def fresh_bound_ms(self, commit_block: int) -> int | None:
        """The time (unix ms) before which a tweet is stale for a commitment at
        `commit_block`: the timestamp of its freshness block. None: no bound yet."""
        block = self.scoring.fresh_from_block(commit_block)
        if block <= 0:
            return None
        if block not in self._times:
            self._times[block] = await self.chain.block_timestamp_ms(block)
        return self._times[block]


def _first_of_each(table: pa.Table) -> pa.Table:
    """Each id once, at its first place (a tweet two manifests of one commitment list)."""
    if table.num_rows == 0 or pc.count_distinct(table["id"]).as_py() == table.num_rows:
        return table
    numbered = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
    first = numbered.group_by("id").aggregate([("__row", "min")])["__row_min"]
    return table.take(pc.sort_indices(first))
