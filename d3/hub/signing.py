"""The index, signed with the builder's hotkey (a validator's), detached in `index.sig`.

The signature is over `b"d3-hub-index-v1:" + sha256(index.json)` in hex. It lives in its
own file because sr25519 signatures are randomised and each validator signs with its own
key: everything else in two validators' hubs is byte-identical, the signatures are not.
"""

from __future__ import annotations

import json

from d3.hub.errors import SignatureInvalid
from d3.hub.layout import canonical, sha256_hex
from d3.manifest import Signer

SIGNING_CONTEXT = b"d3-hub-index-v1:"


def sign_index(signer: Signer, index: bytes) -> bytes:
    digest = sha256_hex(index)
    signature = bytes(signer.sign(SIGNING_CONTEXT + digest.encode())).hex()
    return canonical(
        {"hotkey": signer.ss58_address, "index_sha256": digest, "signature": signature}
    )


def verify_signature(index: bytes, signature_doc: bytes, hotkey: str | None = None) -> str:
    """The hotkey that signed `index`; raises SignatureInvalid. With `hotkey`, it must be
    that one (a consumer names the validator it trusts)."""
    from bittensor.keyfiles import Keypair  # the SDK's native extension, only when asked

    try:
        doc = json.loads(signature_doc)
        signer, digest, signature = doc["hotkey"], doc["index_sha256"], doc["signature"]
    except (ValueError, KeyError, TypeError) as error:
        raise SignatureInvalid(f"unreadable signature: {error}") from None
    if digest != sha256_hex(index):
        raise SignatureInvalid("the signature is for another index")
    if hotkey is not None and signer != hotkey:
        raise SignatureInvalid(f"signed by {signer}, not {hotkey}")
    try:
        valid = Keypair(ss58_address=signer).verify(
            SIGNING_CONTEXT + digest.encode(), bytes.fromhex(signature)
        )
    except (ValueError, TypeError) as error:
        raise SignatureInvalid(f"signature check failed: {error}") from None
    if not valid:
        raise SignatureInvalid(f"the signature does not verify for {signer}")
    return signer
