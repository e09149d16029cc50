"""The exceptions D3 raises on purpose, in one tree, and pydantic errors as one line.

Each class lives next to the code that raises it (module in brackets); this is the map of
what to catch. Every message is one line naming what was wrong, and for an operator what
to change.

    configuration and start-up: an operator must act, the neuron exits non-zero
    ├── ConfigError(ValueError)       [d3.config] flags or variables that cannot work
    ├── FatalError                    [d3.errors] stop now: a restart or an operator is needed
    ├── QueryPlanError(ValueError)    [scraping] a query plan file that cannot be used
    └── SourceConfigError(ValueError) [scraping] a tweet source that cannot be built
    the chain [d3.chain.interface]
    ├── SubnetNotFound                the netuid has no subnet: no round can ever succeed
    ├── ChainUnreachable              no endpoint answered within the start-up deadline
    └── HistoryUnavailable            an old block the endpoint no longer has (no archive)
    a miner's data, refused by a validator: the message is the reason the miner reads
    ├── ManifestError(ValueError)     [d3.manifest] size, hash, canonical form, signature
    ├── ShardError(ValueError)        [d3.shards] a limit or a Parquet check
    ├── RecordError(ValueError)       [d3.record] a rule of d3.record.RULES, first bad row
    ├── VerificationError(ValueError) [d3.validator.verifier] a shard against its manifest
    ├── FetchError                    [d3.validator.fetcher] `transient`: may later help?
    │   └── NotYetAvailable           the host has no such file (yet)
    └── PrivateAddress                [d3.validator.public_net] an address not to connect to
    the validator's own trouble, never the miner's fault
    ├── SeedNotFinal                  [d3.validator.pipeline] the audit's seed is not final
    └── TweetIndexError               [d3.validator.index]
        ├── LayoutError               the Redis holds another layout (remedy in the message)
        └── ConflictError             another writer kept changing the same windows
    the miner's own steps
    ├── HostError                     [d3.miner.hosts] an upload failed; `transient`
    ├── PublishError                  [d3.miner.publisher] the batch stays pending
    └── StoreError(RuntimeError)      [d3.miner.store] the store cannot keep its guarantees
    tweet sources [scraping.source]
    └── SourceError                   a source could not answer
        ├── SourceAuthError           credentials refused: an operator must act
        ├── SourceUnavailable         an outage or a rate limit outlasted the retries
        └── SourceUsageCapped         the plan's cap: lifts when its period rolls over
    the hub [d3.hub.errors, which says what each one means]
    └── HubError                      SnapshotUnstable, RowsUnavailable, LedgerError,
                                      HubCorrupt, SignatureInvalid, ExportError
    offline stand-ins only: ChainRejection, ShapeError, RedisUnavailable [d3.dev],
    QueryError and BadRequest (the local X server)

Values, not exceptions: what comes from chain or from a write decodes to a value carrying
its reason, so no caller can forget to catch it: `UnreadableCommitment` [d3.commitment],
`ChainVerdict` [d3.chain.interface], `SampleVerdict` and `Difference`
[d3.validator.verifier].

`first_error` turns a pydantic ValidationError into the one line every entry point shows
(flags, manifests, query plans, records from a source).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


class FatalError(Exception):
    """Stop the process with a non-zero status: a restart or an operator is needed."""


@dataclass(frozen=True)
class FieldError:
    """The first error of a pydantic ValidationError: where, and what was wrong.

    `where` is the field's path (`queries[0].hashtags`, `shards[2].sha256`; empty for
    the model as a whole); `message` is pydantic's without its "Value error, " prefix
    and `raw_message` the one pydantic wrote; `input` is the offending value.
    """

    where: str
    message: str
    raw_message: str
    input: Any

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a reader writes it: `a.b[0].c`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def first_error(exc: ValidationError) -> FieldError:
    """The first of `exc`'s errors (the one a single line reports)."""
    first = exc.errors()[0]
    raw = first["msg"]
    return FieldError(
        field_path(tuple(first["loc"])), raw.removeprefix("Value error, "), raw, first.get("input")
    )
