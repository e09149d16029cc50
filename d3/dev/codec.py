"""The real subtensor runtime's SCALE codec, for holding the dev chain to what a node accepts.

The dev chain answers from a SQLite file, so nothing in it forces the shapes a real node
would decode. This module loads the codec the SDK itself uses against a real node (its
`RuntimeCodec` over `bittensor_core`) from real runtime metadata: spec 461, as shipped
in the pinned SDK's sdist (see metadata/README.md). The dev chain encodes every submitted
call with it, and the conformance suite (tests/chain/) round-trips every storage value and
runtime-API answer the dev chain serves through the real types.

Loaded once per process, on first use (about 10 ms).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bittensor._transport.codec import RuntimeCodec, StorageEntry
from bittensor._transport.errors import StorageFunctionNotFound

SPEC_VERSION = 461
TRANSACTION_VERSION = 1
SS58_FORMAT = 42
METADATA_PATH = Path(__file__).with_name("metadata") / "subtensor-spec461-v15.scale.gz"
# Of the decompressed bytes: the raw `MetadataVersioned` (V15) blob of spec 461.
METADATA_SHA256 = "0d812a161c40efbe58ac13785cb579ab79b0bc7c4b57f5bcd27981501a8c8ca8"

# What the codec raises on a value its type cannot carry.
_CODEC_ERRORS = (ValueError, TypeError, KeyError, OverflowError)


class ShapeError(ValueError):
    """A call or value the real runtime's types cannot carry: a node would never accept
    (or send) it."""


@functools.cache
def codec() -> RuntimeCodec:
    data = gzip.decompress(METADATA_PATH.read_bytes())
    if hashlib.sha256(data).hexdigest() != METADATA_SHA256:
        raise RuntimeError(f"{METADATA_PATH} is not the spec {SPEC_VERSION} metadata it should be")
    return RuntimeCodec(
        data,
        spec_version=SPEC_VERSION,
        transaction_version=TRANSACTION_VERSION,
        spec_name="node-subtensor",
        ss58_format=SS58_FORMAT,
    )


@functools.cache
def _call_args() -> dict[tuple[str, str], tuple[str, ...]]:
    return {
        (pallet.name, call.name): tuple(arg.name for arg in call.args)
        for pallet in codec().metadata_ir().pallets
        for call in pallet.calls
    }


def call_args(module: str, function: str) -> tuple[str, ...]:
    """The runtime's argument names for a call, in order."""
    try:
        return _call_args()[(module, function)]
    except KeyError:
        raise ShapeError(f"the runtime has no call {module}.{function}") from None


def encode_call(module: str, function: str, params: Mapping[str, Any]) -> bytes:
    """The call's SCALE bytes as the SDK composes them for a node, or ShapeError.

    Stricter than the codec in one way: it ignores params the runtime does not declare,
    and a node never sees them, so they are refused here rather than acted on.
    """
    names = call_args(module, function)
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ShapeError(
            f"{module}.{function} takes ({', '.join(names)}); the runtime has no param "
            f"{', '.join(unknown)}"
        )
    try:
        return codec().compose_call(module, function, dict(params)).data
    except _CODEC_ERRORS as error:
        raise ShapeError(
            f"{module}.{function} does not encode against subtensor spec {SPEC_VERSION}: {error}"
        ) from None


def decode_call(data: bytes) -> tuple[str, str, dict[str, Any]]:
    """(module, function, {arg: value}) as a node's runtime reads the call bytes."""
    decoded = codec().decode_call(data)
    args = {arg["name"]: arg["value"] for arg in decoded["call_args"]}
    return decoded["call_module"], decoded["call_function"], args


def storage_entry(module: str, name: str) -> StorageEntry | None:
    """The runtime's description of a storage item; None when spec 461 has no such item."""
    try:
        return codec().storage_entry(module, name)
    except StorageFunctionNotFound:
        return None


def _entry(module: str, name: str) -> StorageEntry:
    entry = storage_entry(module, name)
    if entry is None:
        raise ShapeError(f"subtensor spec {SPEC_VERSION} has no storage item {module}.{name}")
    return entry


def storage_default(module: str, name: str) -> Any:
    """What a node answers for a key holding no value: the item's default, or None for an
    Optional item (and for an item this runtime does not have)."""
    entry = storage_entry(module, name)
    if entry is None:
        return None
    return codec().decode(entry.decode_type(False), entry.default_bytes)


def _encode(type_string: str, value: Any, what: str) -> bytes:
    try:
        return codec().encode(type_string, value)
    except _CODEC_ERRORS as error:
        raise ShapeError(f"{what}: {value!r:.200} does not encode: {error}") from None


def roundtrip_storage(module: str, name: str, params: Sequence[Any], value: Any) -> Any:
    """What the SDK would receive from a node storing `value` at `module.name[params]`:
    the key is built and the value encoded with the runtime's types, then decoded as the
    SDK decodes a node's answer. ShapeError when a real node could not hold it."""
    entry = _entry(module, name)
    what = f"{module}.{name}{list(params)}"
    if len(params) != len(entry.param_types):
        raise ShapeError(f"{what}: the item takes {len(entry.param_types)} key params")
    try:
        codec().storage_key(entry, list(params))
    except _CODEC_ERRORS as error:
        raise ShapeError(f"{what}: the key does not encode: {error}") from None
    if value is None:
        if entry.modifier != "Optional":
            raise ShapeError(
                f"{what}: a Default item never reads as None; a node answers its default "
                f"{storage_default(module, name)!r}"
            )
        return None
    return codec().decode(entry.value_type, _encode(entry.value_type, value, what))


def roundtrip_map(
    module: str, name: str, prefix: Sequence[Any], pairs: Iterable[tuple[Any, Any]]
) -> list[tuple[Any, Any]]:
    """What the SDK would receive from `query_map(module, name, prefix)` on a node holding
    `pairs`: each key is recovered from its real storage key, each value decoded."""
    entry = _entry(module, name)
    free = len(entry.param_types) - len(prefix)
    if free < 1:
        raise ShapeError(f"{module}.{name}: {list(prefix)} leaves no map key free")
    out = []
    for key, value in pairs:
        keys = list(key) if free > 1 else [key]
        what = f"{module}.{name}{[*prefix, *keys]}"
        try:
            raw_key = codec().storage_key(entry, [*prefix, *keys])
        except _CODEC_ERRORS as error:
            raise ShapeError(f"{what}: the key does not encode: {error}") from None
        parts = codec().decode_storage_key_params(entry, raw_key, fixed=len(prefix))
        decoded_key = tuple(parts) if free > 1 else parts[0]
        raw_value = _encode(entry.value_type, value, what)
        out.append((decoded_key, codec().decode(entry.value_type, raw_value)))
    return out


def roundtrip_runtime_api(api: str, method: str, params: Sequence[Any], value: Any) -> Any:
    """What the SDK would receive from a node answering `api.method(params)` with `value`."""
    definition = codec().runtime_api_map.get(api, {}).get(method)
    if definition is None:
        raise ShapeError(f"subtensor spec {SPEC_VERSION} has no runtime API {api}.{method}")
    inputs = definition["inputs"]
    if len(params) != len(inputs):
        raise ShapeError(f"{api}.{method} takes {len(inputs)} params, not {len(params)}")
    for (arg, type_string), param in zip(inputs, params, strict=True):
        _encode(type_string, param, f"{api}.{method} param {arg}")
    raw = _encode(definition["output"], value, f"{api}.{method} answer")
    return codec().decode(definition["output"], raw)
