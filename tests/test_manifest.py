import json

import pytest
from bittensor.keyfiles import Keypair

from d3.dev.synthetic import synthetic_table
from d3.manifest import ManifestError, build_manifest, check_parent, parse_manifest, verify_manifest
from d3.shards import encode_shard

ALICE = Keypair.create_from_uri("//Alice")
BOB = Keypair.create_from_uri("//Bob")


@pytest.fixture(scope="module")
def shards():
    return [encode_shard(synthetic_table(200, seed=s)) for s in (1, 2)]


def test_sign_parse_verify_round_trip(shards):
    manifest = build_manifest(ALICE, netuid=7, shards=shards, parent=None)
    data = manifest.to_bytes()
    parsed = parse_manifest(data, expected_sha256=manifest.sha256)
    assert parsed == manifest
    verify_manifest(parsed, ALICE.ss58_address, netuid=7)
    assert parsed.body.rows == 400
    assert [s.sha256 for s in parsed.body.shards] == [s.sha256 for s in shards]


def test_tampered_body_fails_signature(shards):
    manifest = build_manifest(ALICE, 7, shards, None)
    doc = json.loads(manifest.to_bytes())
    doc["body"]["shards"][0]["rows"] += 1
    tampered = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    parsed = parse_manifest(tampered)
    with pytest.raises(ManifestError, match="signature does not verify"):
        verify_manifest(parsed, ALICE.ss58_address, 7)
    with pytest.raises(ManifestError, match="do not match the committed sha256"):
        parse_manifest(tampered, expected_sha256=manifest.sha256)


def test_wrong_hotkey_and_resigned_copy(shards):
    manifest = build_manifest(ALICE, 7, shards, None)
    with pytest.raises(ManifestError, match="committed by"):
        verify_manifest(manifest, BOB.ss58_address, 7)
    # Bob's body claims Alice's hotkey but carries Bob's signature.
    forged = build_manifest(BOB, 7, shards, None)
    body = forged.body.model_copy(update={"hotkey": ALICE.ss58_address})
    forged = forged.model_copy(update={"body": body})
    with pytest.raises(ManifestError, match="signature does not verify"):
        verify_manifest(forged, ALICE.ss58_address, 7)


def test_wrong_netuid_and_parent(shards):
    first = build_manifest(ALICE, 7, shards[:1], None)
    second = build_manifest(ALICE, 7, shards[1:], parent=first.sha256)
    check_parent(second, first.sha256)
    with pytest.raises(ManifestError, match="not the expected"):
        check_parent(second, None)
    with pytest.raises(ManifestError, match="not the expected"):
        check_parent(first, second.sha256)
    with pytest.raises(ManifestError, match="netuid 7, not 8"):
        verify_manifest(second, ALICE.ss58_address, 8)


def test_non_canonical_and_malformed_bytes_are_refused(shards):
    manifest = build_manifest(ALICE, 7, shards, None)
    pretty = json.dumps(json.loads(manifest.to_bytes()), indent=2).encode()
    with pytest.raises(ManifestError, match="canonical"):
        parse_manifest(pretty)
    with pytest.raises(ManifestError, match="invalid manifest"):
        parse_manifest(b"{not json")
    doc = json.loads(manifest.to_bytes())
    doc["body"]["shards"].append(doc["body"]["shards"][0])
    with pytest.raises(ManifestError, match="listed twice"):
        parse_manifest(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    doc = json.loads(manifest.to_bytes())
    doc["body"]["version"] = 99
    with pytest.raises(ManifestError, match="version 99 is not supported"):
        parse_manifest(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(ManifestError, match="limit"):
        parse_manifest(b" " * (5 * 1024 * 1024))
