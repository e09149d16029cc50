"""Every storage value and runtime-API answer the dev chain serves round-trips through the
real runtime's type (subtensor spec 461) to exactly what the SDK would receive from a node."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import bittensor._generated.storage as sdk_storage
import pytest

from d3.dev import substrate
from d3.dev.codec import (
    ShapeError,
    roundtrip_map,
    roundtrip_runtime_api,
    roundtrip_storage,
    storage_default,
    storage_entry,
)
from tests.chain.support import CR_NETUID, NETUID, Read, mismatch

MISSING = 99  # a netuid with no subnet

# What the SDK reads (bt.SetWeights's preflight) that spec 461 does not have. The dev chain
# answers it for the newer runtime the SDK was generated from; nothing checks the answer.
ABSENT_FROM_SPEC_461 = {"SubtensorModule.SubnetEpochConsensus"}
# Every storage item of the SDK's generated bindings (SubtensorModule, Commitments) that
# spec 461 lacks: the SDK was generated from a newer runtime.
SDK_ITEMS_ABSENT_FROM_SPEC_461 = {
    "Commitments.TimelockRevealCursor",
    "SubtensorModule.BasketClaimForfeitCapTao",
    "SubtensorModule.BasketClaimRowDustBps",
    "SubtensorModule.BasketClaimRowDustCapTao",
    "SubtensorModule.BasketClaimSliceDustTao",
    "SubtensorModule.BasketLiquidityUsed",
    "SubtensorModule.BasketMinTradeTao",
    "SubtensorModule.LastPowRegistrationBlock",
    "SubtensorModule.LastYumaStepBlock",
    "SubtensorModule.NetworkRegistrationEscrow",
    "SubtensorModule.NullPruningTarget",
    "SubtensorModule.SavedYumaMaxAllowedValidators",
    "SubtensorModule.StakeMoveCooldownUntil",
    "SubtensorModule.SubnetEpochConsensus",
    "SubtensorModule.SubnetLeaseUnpaidDividends",
}

# Items keyed by netuid alone, and the items keyed by nothing.
PER_SUBNET = [
    "Tempo",
    "WeightsSetRateLimit",
    "MinAllowedWeights",
    "MaxWeightsLimit",
    "WeightsVersionKey",
    "CommitRevealWeightsEnabled",
    "RevealPeriodEpochs",
    "PendingEpochAt",
    "SubnetEpochConsensus",
    "Burn",
    "CollateralLockShare",
    "MaxAllowedUids",
    "ImmunityPeriod",
    "SubnetEpochIndex",
    "LastEpochBlock",
    "BlocksSinceLastStep",
    "SubnetworkN",
    "LastUpdate",
    "ValidatorPermit",
]
GLOBAL = [
    ("Timestamp", "Now"),
    ("SubtensorModule", "StakeThreshold"),
    ("SubtensorModule", "CommitRevealWeightsVersion"),
]
MAPS = [
    ("SubtensorModule", "TokenSymbol", []),
    ("Commitments", "RevealedCommitments", [NETUID]),
    ("Commitments", "CommitmentOf", [NETUID]),
    ("SubtensorModule", "Uids", [NETUID]),
    ("SubtensorModule", "Weights", [NETUID]),
    ("SubtensorModule", "TimelockedWeightCommits", [CR_NETUID]),
]
RUNTIME_APIS = [
    ("SubnetInfoRuntimeApi", "get_metagraph"),
    ("SubnetInfoRuntimeApi", "get_next_epoch_start_block"),
]


def _hits_and_misses(world) -> tuple[list, list]:
    """(module, name, params) the dev chain answers with a stored value, and ones it answers
    for a key that holds nothing (where a node gives the item's default)."""
    alice, owner = world.hotkeys["alice"], world.hotkeys["owner"]
    hits = [("SubtensorModule", name, [n]) for name in PER_SUBNET for n in (NETUID, CR_NETUID)]
    hits += [(module, name, []) for module, name in GLOBAL]
    hits += [("Commitments", "CommitmentOf", [NETUID, world.hotkeys[n]]) for n in ("alice", "bob")]
    hits += [("Commitments", "CommitmentOf", [NETUID, world.hotkeys["carol"]])]  # a Raw0
    hits += [
        ("SubtensorModule", "Uids", [NETUID, alice]),
        ("SubtensorModule", "Keys", [NETUID, 0]),
        ("SubtensorModule", "Weights", [NETUID, 0]),
        ("SubtensorModule", "Owner", [alice]),
    ]
    misses = [("SubtensorModule", name, [MISSING]) for name in PER_SUBNET]
    misses += [
        ("Commitments", "CommitmentOf", [NETUID, owner]),
        ("Commitments", "CommitmentOf", [MISSING, alice]),
        ("SubtensorModule", "Uids", [NETUID, owner]),
        ("SubtensorModule", "Uids", [MISSING, alice]),
        ("SubtensorModule", "Keys", [NETUID, 200]),
        ("SubtensorModule", "Keys", [MISSING, 0]),
        ("SubtensorModule", "Weights", [NETUID, 2]),
        ("SubtensorModule", "Weights", [MISSING, 0]),
        ("SubtensorModule", "Owner", [owner]),  # not a neuron's hotkey
    ]
    return hits, misses


def _read_all(world, queries) -> list[Read]:
    async def body():
        return [
            Read("query", module, name, params, await world.dev.query(module, name, params))
            for module, name, params in queries
        ]

    return asyncio.run(body())


def _sdk_view(read: Read):
    """What the SDK would receive from a node holding the dev chain's answer."""
    if read.kind == "query":
        return roundtrip_storage(read.module, read.name, read.params, read.answer)
    if read.kind == "query_map":
        return roundtrip_map(read.module, read.name, read.params, read.answer)
    return roundtrip_runtime_api(read.module, read.name, read.params, read.answer)


def _nonconforming(reads: list[Read]) -> list[str]:
    found = []
    for read in reads:
        label = f"{read.kind} {read.module}.{read.name}{read.params}"
        if read.kind != "runtime_call" and f"{read.module}.{read.name}" in ABSENT_FROM_SPEC_461:
            continue
        try:
            difference = mismatch(read.answer, _sdk_view(read))
        except ShapeError as error:
            difference = str(error)
        if difference:
            found.append(f"{label}: {difference}")
    return found


def test_every_storage_value_round_trips_through_the_real_type(world):
    hits, misses = _hits_and_misses(world)
    reads = _read_all(world, hits + misses)
    assert _nonconforming(reads) == []
    assert all(read.answer is not None for read in reads[: len(hits)])


def test_a_key_holding_nothing_reads_as_the_items_default(world):
    _, misses = _hits_and_misses(world)
    for read in _read_all(world, misses):
        if f"{read.module}.{read.name}" in ABSENT_FROM_SPEC_461:
            continue
        expected = storage_default(read.module, read.name)
        assert mismatch(read.answer, expected) is None, (read, expected)


def test_every_storage_map_round_trips_through_the_real_types(world):
    async def body():
        reads = []
        for module, name, prefix in MAPS:
            for params in [[NETUID], [CR_NETUID], [MISSING]] if prefix else [[]]:
                answer = await world.dev.query_map(module, name, params)
                reads.append(Read("query_map", module, name, params, answer))
        return reads

    reads = asyncio.run(body())
    assert _nonconforming(reads) == []
    populated = {(r.module, r.name) for r in reads if r.answer}
    assert populated == {(m, n) for m, n, _ in MAPS} - {("Commitments", "RevealedCommitments")}


def test_runtime_api_answers_round_trip_through_the_real_types(world):
    async def body():
        return [
            Read(
                "runtime_call",
                api,
                method,
                [netuid],
                await world.dev.runtime_call(api, method, [netuid]),
            )
            for api, method in RUNTIME_APIS
            for netuid in (NETUID, CR_NETUID, MISSING)
        ]

    reads = asyncio.run(body())
    assert _nonconforming(reads) == []
    graphs = [r.answer for r in reads if r.name == "get_metagraph"]
    assert graphs[0]["num_uids"] == 3 and graphs[1]["num_uids"] == 2 and graphs[2] is None
    [served] = [a for a in graphs[0]["axons"] if a["port"]]
    assert (served["ip"], served["port"], served["ip_type"]) == (0x7F000001, 8091, 4)


def test_everything_the_sdk_read_while_the_project_ran_conforms(world):
    """The reads the SDK itself made for the project's chain layer (register, commit,
    both weight paths, axon, metagraph, commitments, timestamps), with the SDK's params."""
    reads = world.dev.recorded.reads
    kinds = {r.kind for r in reads}
    assert kinds == {"query", "query_map", "runtime_call"}
    assert _nonconforming(reads) == []
    read_items = {f"{r.module}.{r.name}" for r in reads if r.kind != "runtime_call"}
    assert {i for i in read_items if storage_entry(*i.split(".")) is None} == ABSENT_FROM_SPEC_461


# -- the lists stay complete ---------------------------------------------------------------

SOURCE = Path(substrate.__file__).read_text()


def test_the_suite_covers_every_item_the_dev_chain_serves(world):
    served = set(re.findall(r'"((?:SubtensorModule|Commitments|Timestamp)\.\w+)"', SOURCE))
    hits, misses = _hits_and_misses(world)
    covered = {f"{m}.{n}" for m, n, _ in hits + misses} | {f"{m}.{n}" for m, n, _ in MAPS}
    assert served - covered == set(), "add these to the conformance suite's tables"
    apis = set(re.findall(r'\("(\w+RuntimeApi)", "(\w+)"\)', SOURCE))
    assert apis - set(RUNTIME_APIS) == set(), "add these to RUNTIME_APIS"


def test_storage_the_sdk_reads_that_spec_461_lacks():
    served = set(re.findall(r'"((?:SubtensorModule|Commitments|Timestamp)\.\w+)"', SOURCE))
    assert {i for i in served if storage_entry(*i.split(".")) is None} == ABSENT_FROM_SPEC_461
    generated = {
        f"{item.container}.{item.name}"
        for pallet in (sdk_storage.SubtensorModule, sdk_storage.Commitments)
        for item in vars(pallet).values()
        if isinstance(item, sdk_storage.Item)
    }
    absent = {i for i in generated if storage_entry(*i.split(".")) is None}
    assert absent == SDK_ITEMS_ABSENT_FROM_SPEC_461


# -- wrong shapes ------------------------------------------------------------------------

COMMITMENT = {"deposit": 0, "block": 4, "info": {"fields": [{"Raw2": "0x6869"}]}}
ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
REFUSED = {
    "a Raw200 commitment field": (
        "Commitments",
        "CommitmentOf",
        [2, ALICE],
        {**COMMITMENT, "info": {"fields": [{"Raw200": "0x" + "78" * 200}]}},
    ),
    "a commitment without its deposit": (
        "Commitments",
        "CommitmentOf",
        [2, ALICE],
        {"block": 4, "info": COMMITMENT["info"]},
    ),
    "weights as floats": ("SubtensorModule", "Weights", [2, 0], [(0, 0.5), (1, 0.5)]),
    "a negative last update": ("SubtensorModule", "LastUpdate", [2], [5, -1]),
    "a u16 item beyond u16": ("SubtensorModule", "Tempo", [2], 70_000),
    "None for a Default item": ("SubtensorModule", "Tempo", [2], None),
    "a key that is not an account": ("SubtensorModule", "Uids", [2, "alice"], 0),
    "a key too many": ("SubtensorModule", "Tempo", [2, 0], 360),
}
# Values the codec encodes, but not to what the dev chain said: only the strict comparison
# with what comes back catches them.
COERCED = {
    "an extra commitment key": ("Commitments", "CommitmentOf", [2, ALICE], {**COMMITMENT, "x": 1}),
    "an empty Raw0 as 0x-hex": (
        "Commitments",
        "CommitmentOf",
        [2, ALICE],
        {**COMMITMENT, "info": {"fields": [{"Raw0": "0x"}]}},
    ),
    "permits as integers": ("SubtensorModule", "ValidatorPermit", [2], [1, 0]),
    "a block number as a bool": ("SubtensorModule", "Tempo", [2], True),
}


@pytest.mark.parametrize("module, name, params, value", REFUSED.values(), ids=list(REFUSED))
def test_a_wrongly_shaped_storage_value_does_not_encode(module, name, params, value):
    with pytest.raises(ShapeError, match=f"{module}.{name}"):
        roundtrip_storage(module, name, params, value)


@pytest.mark.parametrize("module, name, params, value", COERCED.values(), ids=list(COERCED))
def test_a_coerced_storage_value_is_caught_by_the_comparison(module, name, params, value):
    read = Read("query", module, name, params, value)
    [difference] = _nonconforming([read])
    assert f"{module}.{name}" in difference


def test_the_old_partial_metagraph_answer_would_have_been_caught(world):
    graph = asyncio.run(world.dev.runtime_call("SubnetInfoRuntimeApi", "get_metagraph", [NETUID]))
    partial = {k: v for k, v in graph.items() if k not in substrate._METAGRAPH_UNMODELLED}
    with pytest.raises(ShapeError, match='missing struct field "identity"'):
        roundtrip_runtime_api("SubnetInfoRuntimeApi", "get_metagraph", [NETUID], partial)
    short_axons = {**graph, "axons": [{"ip": 0, "port": 0, "ip_type": 4}] * len(graph["axons"])}
    with pytest.raises(ShapeError, match="get_metagraph answer"):
        roundtrip_runtime_api("SubnetInfoRuntimeApi", "get_metagraph", [NETUID], short_axons)
