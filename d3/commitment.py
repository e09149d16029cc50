"""The on-chain commitment: a version tag, the manifest SHA-256 and where to fetch it.

    d3.1:<manifest sha256, base64url, 43 chars>:<locator>

The whole string is at most 128 bytes (one Raw field of the commitments pallet). The hash
is base64url rather than hex to leave 79 bytes for the locator. Decoding never raises on
bad input from chain: it returns an `UnreadableCommitment` value with a one-line reason, so a
garbage commitment costs the validator a log line and nothing more.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, urlsplit

MAX_COMMITMENT_BYTES = 128
VERSION_TAG = "d3.1"
_HASH_B64_LEN = 43

_HF_REPO = re.compile(
    r"^hf:([A-Za-z0-9][A-Za-z0-9_.-]{0,95})/([A-Za-z0-9][A-Za-z0-9_.-]{0,95})(?:@([A-Za-z0-9_./-]{1,64}))?$"
)
_S3 = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/([A-Za-z0-9_.\-/]*))?$")
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")


class LocatorKind(StrEnum):
    HTTP = "http"
    HF = "hf"
    S3 = "s3"
    FILE = "file"


@dataclass(frozen=True)
class Locator:
    """Where a miner's manifests and shards live. `text` is the exact committed form."""

    kind: LocatorKind
    text: str
    # http: base URL; hf: "owner/repo"; s3: bucket; file: absolute directory path
    target: str
    # hf: revision (default "main"); s3: key prefix ("" for the bucket root)
    extra: str = ""

    def url_for(self, name: str, s3_endpoint: str | None = None) -> str:
        """The URL of file `name` (a shard or manifest) at this host.

        S3 objects resolve to virtual-hosted AWS URLs unless the validator names an
        S3-compatible endpoint (`s3_endpoint`), in which case path-style is used.
        """
        name = quote(name)
        match self.kind:
            case LocatorKind.HTTP:
                return f"{self.target.rstrip('/')}/{name}"
            case LocatorKind.HF:
                return (
                    f"https://huggingface.co/datasets/{self.target}/resolve/"
                    f"{quote(self.extra, safe='')}/{name}"
                )
            case LocatorKind.S3:
                key = f"{self.extra.strip('/')}/{name}" if self.extra.strip("/") else name
                if s3_endpoint:
                    return f"{s3_endpoint.rstrip('/')}/{self.target}/{key}"
                return f"https://{self.target}.s3.amazonaws.com/{key}"
            case LocatorKind.FILE:
                return f"file://{self.target.rstrip('/')}/{name}"


@dataclass(frozen=True)
class Commitment:
    manifest_sha256: str
    locator: Locator

    def encode(self) -> str:
        digest = base64.urlsafe_b64encode(bytes.fromhex(self.manifest_sha256)).rstrip(b"=")
        text = f"{VERSION_TAG}:{digest.decode()}:{self.locator.text}"
        if len(text.encode()) > MAX_COMMITMENT_BYTES:
            raise ValueError(
                f"commitment is {len(text.encode())} bytes, limit {MAX_COMMITMENT_BYTES}: "
                f"shorten the locator ({len(self.locator.text)} chars)"
            )
        return text


@dataclass(frozen=True)
class UnreadableCommitment:
    """Why a commitment string was not understood (a value, not an exception)."""

    reason: str


def parse_locator(text: str) -> Locator:
    """Parse a locator as an operator writes it in config; raises ValueError with the reason."""
    if not text or not _PRINTABLE.match(text):
        raise ValueError("locator is empty or has spaces or non-ASCII characters")
    if text.startswith(("https://", "http://")):
        parts = urlsplit(text)
        if not parts.hostname or parts.query or parts.fragment or parts.username:
            raise ValueError(f"locator {text!r} must be a plain base URL with a host")
        return Locator(LocatorKind.HTTP, text, text)
    if text.startswith("hf:"):
        m = _HF_REPO.match(text)
        if not m or ".." in text:
            raise ValueError(f"locator {text!r} is not hf:owner/repo[@revision]")
        return Locator(LocatorKind.HF, text, f"{m[1]}/{m[2]}", m[3] or "main")
    if text.startswith("s3://"):
        m = _S3.match(text)
        if not m or ".." in text:
            raise ValueError(f"locator {text!r} is not s3://bucket[/prefix]")
        return Locator(LocatorKind.S3, text, m[1], m[2] or "")
    if text.startswith("file://"):
        path = text.removeprefix("file://")
        if not path.startswith("/") or "/../" in path + "/":
            raise ValueError(f"locator {text!r} must be file:// with an absolute path")
        return Locator(LocatorKind.FILE, text, path)
    raise ValueError(f"locator {text[:40]!r} is not https://, http://, hf:, s3:// or file://")


def decode_commitment(raw: str | bytes) -> Commitment | UnreadableCommitment:
    """Decode a commitment read from chain; any other bytes give an UnreadableCommitment."""
    try:
        if isinstance(raw, bytes | bytearray):
            if len(raw) > MAX_COMMITMENT_BYTES:
                return UnreadableCommitment(
                    f"commitment is {len(raw)} bytes, over {MAX_COMMITMENT_BYTES}"
                )
            raw = bytes(raw).decode("ascii")
        if len(raw.encode("utf-8", "replace")) > MAX_COMMITMENT_BYTES:
            return UnreadableCommitment(f"commitment is over {MAX_COMMITMENT_BYTES} bytes")
        tag, sep, rest = raw.partition(":")
        if not sep or tag != VERSION_TAG:
            shown = tag[:16].encode("ascii", "backslashreplace").decode()
            return UnreadableCommitment(
                f"not a D3 commitment (tag {shown!r}, want {VERSION_TAG!r})"
            )
        digest, sep, locator_text = (
            rest[:_HASH_B64_LEN],
            rest[_HASH_B64_LEN : _HASH_B64_LEN + 1],
            rest[_HASH_B64_LEN + 1 :],
        )
        if sep != ":" or len(digest) != _HASH_B64_LEN:
            return UnreadableCommitment("commitment hash field is not 43 base64url characters")
        manifest_hash = base64.urlsafe_b64decode(digest + "=").hex()
        if base64.urlsafe_b64encode(bytes.fromhex(manifest_hash)).rstrip(b"=").decode() != digest:
            return UnreadableCommitment("commitment hash is not canonical base64url")
        return Commitment(manifest_hash, parse_locator(locator_text))
    except UnicodeDecodeError:
        return UnreadableCommitment("commitment is not ASCII text")
    except (binascii.Error, ValueError) as exc:
        return UnreadableCommitment(f"bad commitment: {exc}")
