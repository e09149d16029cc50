"""Manifests: the signed, content-addressed list of a miner's shards.

A manifest names its shards by hash and its predecessor by hash (`parent`), so the chain
of manifests is a hash chain: a validator that missed a commitment walks `parent` back
and still finds every shard. The miner's hotkey signs the canonical body; the manifest's
own hash (of its canonical bytes, signature included) is what goes on chain.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from d3 import PROTOCOL_VERSION
from d3.errors import first_error
from d3.shards import SHA256_HEX, EncodedShard, sha256_hex

MANIFEST_SUFFIX = ".json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_SHARDS = 10_000
# Domain separation: a manifest signature can never be replayed as any other message.
SIGNING_CONTEXT = b"d3-manifest-v1:"

Sha256Hex = Annotated[str, Field(pattern=SHA256_HEX.pattern)]
PositiveInt = Annotated[int, Field(gt=0)]


class ManifestError(ValueError):
    """A manifest is unusable; the message says why in one line."""


class Signer(Protocol):
    """What signing needs of a keypair (the SDK's `Keypair` is one)."""

    ss58_address: str

    def sign(self, data: bytes) -> bytes: ...


class ShardRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: Sha256Hex
    rows: PositiveInt
    bytes: PositiveInt
    min_id: PositiveInt
    max_id: PositiveInt

    @classmethod
    def of(cls, shard: EncodedShard) -> ShardRef:
        return cls(
            sha256=shard.sha256,
            rows=shard.rows,
            bytes=len(shard.data),
            min_id=shard.min_id,
            max_id=shard.max_id,
        )


class ManifestBody(BaseModel):
    """Everything the signature covers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = PROTOCOL_VERSION
    netuid: int = Field(ge=0, le=65535)
    hotkey: str = Field(min_length=46, max_length=48)
    parent: Sha256Hex | None = None
    created_at: int = Field(gt=0, description="unix milliseconds")
    shards: list[ShardRef] = Field(min_length=1, max_length=MAX_SHARDS)

    @field_validator("version")
    @classmethod
    def _supported(cls, value: int) -> int:
        if value != PROTOCOL_VERSION:
            raise ValueError(f"protocol version {value} is not supported ({PROTOCOL_VERSION} is)")
        return value

    @field_validator("shards")
    @classmethod
    def _distinct(cls, shards: list[ShardRef]) -> list[ShardRef]:
        if len({s.sha256 for s in shards}) != len(shards):
            raise ValueError("a shard is listed twice")
        if any(s.min_id > s.max_id for s in shards):
            raise ValueError("a shard has min_id > max_id")
        return shards

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def canonical(self) -> bytes:
        return _canonical(self.model_dump(mode="json"))


class Manifest(BaseModel):
    """A signed manifest, as stored at the dataset host."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    body: ManifestBody
    signature: str = Field(pattern=r"^[0-9a-f]{128}$")

    def to_bytes(self) -> bytes:
        return _canonical(self.model_dump(mode="json"))

    @property
    def sha256(self) -> str:
        return sha256_hex(self.to_bytes())

    @property
    def name(self) -> str:
        return self.sha256 + MANIFEST_SUFFIX


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def build_manifest(
    signer: Signer,
    netuid: int,
    shards: list[EncodedShard],
    parent: str | None,
    created_at: datetime | None = None,
) -> Manifest:
    """Sign a manifest listing `shards`, chained after `parent` (None for the first)."""
    when = created_at or datetime.now(UTC)
    body = ManifestBody(
        netuid=netuid,
        hotkey=signer.ss58_address,
        parent=parent,
        created_at=int(when.timestamp() * 1000),
        shards=[ShardRef.of(s) for s in shards],
    )
    signature = bytes(signer.sign(SIGNING_CONTEXT + body.canonical())).hex()
    return Manifest(body=body, signature=signature)


def parse_manifest(data: bytes, expected_sha256: str | None = None) -> Manifest:
    """Parse untrusted manifest bytes: size, hash, canonical form and schema."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest is {len(data)} bytes, limit {MAX_MANIFEST_BYTES}")
    if expected_sha256 is not None and sha256_hex(data) != expected_sha256:
        raise ManifestError("manifest bytes do not match the committed sha256")
    try:
        manifest = Manifest.model_validate_json(data)
    except ValidationError as exc:
        first = first_error(exc)
        where = first.where or "top"
        raise ManifestError(f"invalid manifest at {where}: {first.message}") from None
    if manifest.to_bytes() != data:
        # Two encodings of one manifest would have two hashes; only the canonical one counts.
        raise ManifestError("manifest is not in canonical JSON form")
    return manifest


def verify_manifest(
    manifest: Manifest,
    hotkey: str,
    netuid: int,
) -> None:
    """Check that `hotkey` signed `manifest` for `netuid`; raises ManifestError saying why not."""
    # Imported here so that parsing manifests never needs the SDK's native extension.
    from bittensor.keyfiles import Keypair

    body = manifest.body
    if body.hotkey != hotkey:
        raise ManifestError(f"manifest is for hotkey {body.hotkey}, committed by {hotkey}")
    if body.netuid != netuid:
        raise ManifestError(f"manifest is for netuid {body.netuid}, not {netuid}")
    try:
        public = Keypair(ss58_address=hotkey)
        valid = public.verify(SIGNING_CONTEXT + body.canonical(), bytes.fromhex(manifest.signature))
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"signature check failed: {exc}") from None
    if not valid:
        raise ManifestError("signature does not verify for the committing hotkey")


def check_parent(manifest: Manifest, expected_parent: str | None) -> None:
    """A manifest must extend the hotkey's previous one: the chain is what makes a missed
    commitment recoverable, so a fork or a skipped link is refused."""
    if manifest.body.parent != expected_parent:
        raise ManifestError(
            f"manifest parent {manifest.body.parent} is not the expected {expected_parent}"
        )
