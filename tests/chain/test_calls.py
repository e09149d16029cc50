"""Every call the project composes encodes with the real runtime's codec (subtensor spec 461)
and decodes back to what was meant; the dev chain refuses what that codec cannot encode."""

from __future__ import annotations

import asyncio

import bittensor as bt
import pytest

from d3.chain.sdk import SdkChain, commitment_info
from d3.dev import codec
from d3.dev.chain_state import SubnetParams
from d3.dev.codec import ShapeError, call_args, decode_call, encode_call
from d3.dev.substrate import DevSubstrate
from d3.dev.wallets import dev_wallet
from tests.chain.support import AXON, COMMITS, CR_NETUID, NETUID, WEIGHTS, mismatch

PROJECT_CALLS = {
    ("Commitments", "set_commitment"),
    ("SubtensorModule", "burned_register"),
    ("SubtensorModule", "set_mechanism_weights"),
    ("SubtensorModule", "commit_timelocked_mechanism_weights"),
    ("SubtensorModule", "serve_axon"),
}


def _as_bytes(value) -> bytes:
    """Bytes from the codec's decoding of a byte string: 0x-hex, text, or a byte list."""
    if isinstance(value, str):
        return bytes.fromhex(value[2:]) if value.startswith("0x") else value.encode()
    return bytes(value)


def _committed(info: dict) -> bytes:
    """The bytes of a CommitmentInfo, checking each Raw field's length matches its variant."""
    fields = info["fields"]
    if fields and isinstance(fields[0], list):  # the BoundedVec's newtype wrapper, as built
        [fields] = fields
    out = b""
    for field in fields:
        [(variant, value)] = field.items()
        data = _as_bytes(value)
        assert variant == f"Raw{len(data)}"
        out += data
    return out


def test_the_project_composes_exactly_the_calls_it_means(world):
    composed = {(module, function) for module, function, _ in world.dev.recorded.calls}
    assert composed == PROJECT_CALLS
    assert all(v.ok for v in world.verdicts.values()), world.verdicts


def test_every_composed_call_encodes_and_decodes_back_to_its_args(world):
    for module, function, params in world.dev.recorded.calls:
        data = encode_call(module, function, params)
        assert data == codec.codec().compose_call(module, function, params).data
        decoded_module, decoded_function, args = decode_call(data)
        assert (decoded_module, decoded_function) == (module, function)
        assert tuple(args) == call_args(module, function)  # every arg, in the runtime's order
        # What a node decodes re-encodes to the same bytes: nothing was lost or coerced.
        assert encode_call(module, function, args) == data
        match function:
            case "set_commitment":
                assert args["netuid"] == params["netuid"] == NETUID
                assert _committed(args["info"]) == _committed(params["info"])
            case "commit_timelocked_mechanism_weights":
                assert _as_bytes(args.pop("commit")) == bytes(params.pop("commit"))
                assert args == params and args["netuid"] == CR_NETUID
            case _:  # plain integers and accounts decode to exactly what was composed
                assert mismatch(params, args) is None, (function, mismatch(params, args))


def test_commitments_carry_exactly_the_committed_bytes(world):
    commits = [p for _, f, p in world.dev.recorded.calls if f == "set_commitment"]
    decoded = [decode_call(encode_call("Commitments", "set_commitment", p))[2] for p in commits]
    assert [_committed(args["info"]) for args in decoded] == list(COMMITS.values())
    # The project's own builder, byte for byte as the runtime reads it.
    data = encode_call(
        "Commitments", "set_commitment", {"netuid": 7, "info": commitment_info(b"x")}
    )
    assert data.hex() == "1200" + "0700" + "04" + "02" + "78"  # pallet 18 call 0; Raw1 is 2


def test_weights_decode_to_the_sdk_normalisation_and_land_as_decoded(world):
    [params] = [p for _, f, p in world.dev.recorded.calls if f == "set_mechanism_weights"]
    _, _, args = decode_call(encode_call("SubtensorModule", "set_mechanism_weights", params))
    assert (args["netuid"], args["mecid"], args["version_key"]) == (NETUID, 0, 0)
    top = max(WEIGHTS.values())
    assert args["dests"] == sorted(WEIGHTS)
    assert args["weights"] == [round(WEIGHTS[uid] / top * 65535) for uid in sorted(WEIGHTS)]
    landed = asyncio.run(world.dev.query("SubtensorModule", "Weights", [NETUID, 0]))
    assert landed == list(zip(args["dests"], args["weights"], strict=True))


def test_axon_decodes_to_the_served_endpoint(world):
    [params] = [p for _, f, p in world.dev.recorded.calls if f == "serve_axon"]
    _, _, args = decode_call(encode_call("SubtensorModule", "serve_axon", params))
    ip = ".".join(str(args["ip"] >> shift & 0xFF) for shift in (24, 16, 8, 0))
    assert (ip, args["port"], args["ip_type"]) == (*AXON, 4)


# -- wrong shapes ------------------------------------------------------------------------

WEIGHTS_CALL = {"netuid": 2, "mecid": 0, "dests": [0, 1], "weights": [21845, 65535]}
WRONG_CALLS = {
    "a Raw field longer than Data allows": (
        "Commitments",
        "set_commitment",
        {"netuid": 2, "info": {"fields": [[{"Raw200": b"x" * 200}]]}},
    ),
    "a Raw field shorter than its variant": (
        "Commitments",
        "set_commitment",
        {"netuid": 2, "info": {"fields": [[{"Raw5": b"four"}]]}},
    ),
    "the info without its fields": ("Commitments", "set_commitment", {"netuid": 2, "info": {}}),
    "weights as floats": (
        "SubtensorModule",
        "set_mechanism_weights",
        {**WEIGHTS_CALL, "weights": [0.25, 0.75], "version_key": 0},
    ),
    "a weight beyond u16": (
        "SubtensorModule",
        "set_mechanism_weights",
        {**WEIGHTS_CALL, "weights": [70_000, 1], "version_key": 0},
    ),
    "a negative uid": (
        "SubtensorModule",
        "set_mechanism_weights",
        {**WEIGHTS_CALL, "dests": [-1, 0], "version_key": 0},
    ),
    "no mecid (the pre-mechanism shape)": (
        "SubtensorModule",
        "set_mechanism_weights",
        {"netuid": 2, "dests": [0], "weights": [1], "version_key": 0},
    ),
    "a param the runtime does not declare": (
        "SubtensorModule",
        "set_mechanism_weights",
        {**WEIGHTS_CALL, "version_key": 0, "uids": [0, 1]},
    ),
    "a hotkey that is not an ss58 address": (
        "SubtensorModule",
        "burned_register",
        {"netuid": 2, "hotkey": "alice"},
    ),
    "an ip as a dotted string": (
        "SubtensorModule",
        "serve_axon",
        {
            "netuid": 2,
            "version": 1,
            "ip": "127.0.0.1",
            "port": 8091,
            "ip_type": 4,
            "protocol": 4,
            "placeholder1": 0,
            "placeholder2": 0,
        },
    ),
    "a call the runtime does not have": ("SubtensorModule", "set_weights_v2", {"netuid": 2}),
}


@pytest.mark.parametrize("module, function, params", WRONG_CALLS.values(), ids=list(WRONG_CALLS))
def test_a_wrongly_shaped_call_does_not_encode(module, function, params):
    with pytest.raises(ShapeError, match=f"{module}.{function}"):
        encode_call(module, function, params)


@pytest.fixture
def plain_chain(tmp_path):
    dev = DevSubstrate(tmp_path / "chain.sqlite")
    wallets = {name: dev_wallet(tmp_path / "wallets", name) for name in ("owner", "alice")}
    owner = wallets["owner"]
    dev.create_subnet(
        NETUID,
        owner.hotkey.ss58_address,
        owner.coldkeypub.ss58_address,
        SubnetParams(tempo=10, weights_rate_limit=1, commit_reveal=False),
    )
    return dev, wallets["alice"]


def test_the_dev_chain_refuses_calls_a_node_could_not_decode(plain_chain):
    """Floats for weights used to be truncated to zeros and accepted; Raw200 reached the
    dev chain's own parser. Now both stop where a real node's decoding would."""
    dev, alice = plain_chain

    async def body():
        async with bt.Subtensor("local", substrate=dev) as client:
            chain = SdkChain(client, alice, NETUID)
            assert (await chain.register()).ok
            dev.set_stake(chain.hotkey, 10**12)
            dev.advance(10)  # into the epoch that grants alice a validator permit
            submit = lambda call: client.submit_call(call, alice, signer="hotkey")  # noqa: E731
            floats = await submit(
                bt.calls.SubtensorModule.set_mechanism_weights(
                    netuid=NETUID, mecid=0, dests=[0], weights=[0.5], version_key=0
                )
            )
            raw200 = await submit(
                bt.calls.Commitments.set_commitment(
                    netuid=NETUID, info={"fields": [[{"Raw200": b"x" * 200}]]}
                )
            )
            weights_after = await dev.query("SubtensorModule", "Weights", [NETUID, 0])
            commitment_after = await dev.query(
                "Commitments", "CommitmentOf", [NETUID, chain.hotkey]
            )
            # The same calls, well shaped, are accepted.
            ints = await submit(
                bt.calls.SubtensorModule.set_mechanism_weights(
                    netuid=NETUID, mecid=0, dests=[0], weights=[65535], version_key=0
                )
            )
            return floats, raw200, weights_after, commitment_after, ints

    floats, raw200, weights_after, commitment_after, ints = asyncio.run(body())
    for refused, detail in ((floats, "float"), (raw200, "Raw200")):
        assert not refused.success
        assert refused.error.name == "CallNotDecodable"
        assert "does not encode against subtensor spec 461" in refused.message
        assert detail in refused.message
    assert weights_after == [] and commitment_after is None
    assert ints.success, ints.message


def test_the_codec_loads_once_per_process():
    assert codec.codec() is codec.codec()
    assert codec.codec().spec_version == codec.SPEC_VERSION == 461
