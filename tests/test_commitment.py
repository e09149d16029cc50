import os
import random

import pytest

from d3.commitment import (
    MAX_COMMITMENT_BYTES,
    Commitment,
    LocatorKind,
    UnreadableCommitment,
    decode_commitment,
    parse_locator,
)

HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.mark.parametrize(
    ("text", "kind", "target", "extra", "url"),
    [
        (
            "https://data.example.org/d3",
            LocatorKind.HTTP,
            "https://data.example.org/d3",
            "",
            "https://data.example.org/d3/x.json",
        ),
        (
            "http://127.0.0.1:8080/",
            LocatorKind.HTTP,
            "http://127.0.0.1:8080/",
            "",
            "http://127.0.0.1:8080/x.json",
        ),
        (
            "hf:acme/tweets",
            LocatorKind.HF,
            "acme/tweets",
            "main",
            "https://huggingface.co/datasets/acme/tweets/resolve/main/x.json",
        ),
        (
            "hf:acme/tweets@v2",
            LocatorKind.HF,
            "acme/tweets",
            "v2",
            "https://huggingface.co/datasets/acme/tweets/resolve/v2/x.json",
        ),
        (
            "s3://my-bucket/d3/miner1",
            LocatorKind.S3,
            "my-bucket",
            "d3/miner1",
            "https://my-bucket.s3.amazonaws.com/d3/miner1/x.json",
        ),
        (
            "s3://my-bucket",
            LocatorKind.S3,
            "my-bucket",
            "",
            "https://my-bucket.s3.amazonaws.com/x.json",
        ),
        ("file:///tmp/d3/host", LocatorKind.FILE, "/tmp/d3/host", "", "file:///tmp/d3/host/x.json"),
    ],
)
def test_every_locator_kind_round_trips(text, kind, target, extra, url):
    commitment = Commitment(HASH, parse_locator(text))
    encoded = commitment.encode()
    assert len(encoded.encode()) <= MAX_COMMITMENT_BYTES
    decoded = decode_commitment(encoded)
    assert decoded == commitment
    assert (decoded.locator.kind, decoded.locator.target, decoded.locator.extra) == (
        kind,
        target,
        extra,
    )
    assert decoded.locator.url_for("x.json") == url
    assert decode_commitment(encoded.encode()) == commitment


def test_s3_custom_endpoint_is_path_style():
    locator = parse_locator("s3://bucket/pre")
    assert locator.url_for("a.parquet", s3_endpoint="http://127.0.0.1:9000") == (
        "http://127.0.0.1:9000/bucket/pre/a.parquet"
    )


def test_128_byte_limit():
    prefix_len = len(Commitment(HASH, parse_locator("https://a.io/")).encode()) - len(
        "https://a.io/"
    )
    fits = "https://a.io/" + "p" * (MAX_COMMITMENT_BYTES - prefix_len - len("https://a.io/"))
    assert len(Commitment(HASH, parse_locator(fits)).encode()) == MAX_COMMITMENT_BYTES
    with pytest.raises(ValueError, match="shorten the locator"):
        Commitment(HASH, parse_locator(fits + "p")).encode()
    assert isinstance(decode_commitment("d3.1:" + "A" * 200), UnreadableCommitment)


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://host/x",
        "hf:just-owner",
        "hf:a/../b",
        "s3://UPPER/x",
        "file://relative/x",
        "https://",
        "https://h/x?q=1",
        "https://h/ x",
        "",
    ],
)
def test_bad_locators_are_refused(bad):
    with pytest.raises(ValueError):
        parse_locator(bad)
    encoded = "d3.1:" + "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg:" + bad
    result = decode_commitment(encoded)
    assert isinstance(result, UnreadableCommitment) and result.reason


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "hello",
        "d3.2:abc:https://x.io",
        "d3.1:short:https://x.io",
        "d3.1:" + "!" * 43 + ":https://x.io",
        "d3.1:" + "A" * 43 + "https://x.io",
        b"\xff\xfe\x00garbage",
        "ipfs://QmHash",
        "d3.1:n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgh:https://x.io",
    ],
)
def test_garbage_returns_an_error_value(raw):
    result = decode_commitment(raw)
    assert isinstance(result, UnreadableCommitment)
    assert "\n" not in result.reason and result.reason


def test_random_bytes_never_raise():
    rng = random.Random(0)
    for _ in range(2000):
        raw = rng.randbytes(rng.randint(0, 160))
        assert isinstance(decode_commitment(raw), (Commitment, UnreadableCommitment))
    for _ in range(200):
        assert isinstance(decode_commitment(os.urandom(40).hex()), UnreadableCommitment)
