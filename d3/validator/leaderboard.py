"""The leaderboard: one read model of the numbers that set weights.

It is built from `RoundRunner.scores` (the very `MinerScore`s a weight-set sends), the
metagraph they were computed at, and this validator's row of weights on chain, so a
leaderboard can never disagree with the weights: there is no second way of counting
"unique" here. Everything that shows a leaderboard (`/leaderboard.json`, the logs, a
dashboard page) renders a `Leaderboard`.

Per miner:

    rank         1 for the best score; equal scores share a rank
    rank_steps   how many RANK_STEP steps of score below the best (the mechanism's own,
                 fractional rank); None without a score
    unique       credited unique tweets in the window, each audited period's credit times
                 the share of its sample X found
    noise        the standard error of `unique` from sampling X
    credibility  the running average over the window's periods of the share of this
                 miner's commitments that went its way (0 for a failed audit)
    score        max(0, unique − CONFIDENCE_Z × noise) × credibility
    weight       DECAY^rank_steps / Σ DECAY^rank_steps: what this validator would set now
    chain_weight this validator's weight for the uid on chain (normalised; None: not read)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from d3.chain.interface import MetagraphSnapshot
from d3.validator.scoring import MinerScore, ScoringParams


def legend(params: ScoringParams) -> str:
    return (
        f"score = max(0, unique - {params.confidence_z:g} x noise) x credibility. "
        "unique: credited unique tweets in the window (each audited period's credit times "
        "the share of its sample X found); noise: the standard error of unique from "
        "sampling X; credibility: the running average over the window's periods of the "
        "share of the miner's commitments that went its way (0 for a failed audit). "
        "rank_steps = log(top score / score) / "
        f"log(1 + {params.rank_step:g}): each {params.rank_step:.0%} less score is one step. "
        f"weight = {params.decay:g}^rank_steps / sum over miners: what this validator sets "
        "next (a miner with no score gets 0). chain_weight: this validator's weights on "
        "chain now, normalised; it lags weight until the next weight-set lands (on a "
        "commit-reveal subnet, until its reveal an epoch later) and carries the chain's "
        "u16 rounding and the padding to MinAllowedWeights."
    )


@dataclass(frozen=True)
class Row:
    rank: int
    uid: int
    hotkey: str
    unique: int
    noise: float
    credibility: float
    score: float
    rank_steps: float | None
    weight: float
    chain_weight: float | None
    stake: float
    validator_permit: bool


@dataclass(frozen=True)
class Leaderboard:
    netuid: int
    block: int
    caught_up: bool  # False: still replaying history, so weights wait
    rows: tuple[Row, ...]
    legend: str

    def to_json(self) -> dict[str, Any]:
        return {
            "netuid": self.netuid,
            "block": self.block,
            "caught_up": self.caught_up,
            "legend": self.legend,
            "miners": [asdict(r) for r in self.rows],
        }

    def lines(self, top: int | None = None) -> list[str]:
        """A plain-text table for logs and terminals."""
        out = [
            f"{'rank':>4} {'uid':>4} {'hotkey':<12} {'unique':>9} {'noise':>8} {'cred':>5} "
            f"{'score':>10} {'weight':>7} {'chain':>7}"
        ]
        for r in self.rows[:top]:
            chain = "-" if r.chain_weight is None else f"{r.chain_weight:.4f}"
            out.append(
                f"{r.rank:>4} {r.uid:>4} {r.hotkey[:12]:<12} {r.unique:>9} {r.noise:>8.1f} "
                f"{r.credibility:>5.2f} {r.score:>10.1f} {r.weight:>7.4f} {chain:>7}"
            )
        return out


def normalised(row: Mapping[int, int] | None) -> dict[int, float] | None:
    if row is None:
        return None
    total = sum(row.values())
    return {uid: (w / total if total else 0.0) for uid, w in row.items()}


def build(
    scores: Sequence[MinerScore],
    graph: MetagraphSnapshot,
    params: ScoringParams,
    chain_weights: Mapping[int, float] | None = None,
    caught_up: bool = True,
) -> Leaderboard:
    """The leaderboard of `scores` (from `RoundRunner.scores(graph)`), best first."""
    neurons = {n.uid: n for n in graph.neurons}
    top = max((s.score for s in scores), default=0.0)
    ordered = sorted(scores, key=lambda s: (-s.score, s.uid))
    rows = []
    rank, previous = 0, None
    for position, s in enumerate(ordered, start=1):
        if s.score != previous:
            rank, previous = position, s.score
        steps = (
            math.log(top / s.score) / math.log(1 + params.rank_step)
            if s.score > 0 and top > 0
            else None
        )
        neuron = neurons.get(s.uid)
        rows.append(
            Row(
                rank=rank,
                uid=s.uid,
                hotkey=s.hotkey,
                unique=s.unique,
                noise=s.noise,
                credibility=s.credibility,
                score=s.score,
                rank_steps=steps,
                weight=s.weight,
                chain_weight=None if chain_weights is None else chain_weights.get(s.uid, 0.0),
                stake=neuron.stake if neuron is not None else 0.0,
                validator_permit=neuron.validator_permit if neuron is not None else False,
            )
        )
    return Leaderboard(graph.netuid, graph.block, caught_up, tuple(rows), legend(params))


async def read(
    runner: Any,
    graph: MetagraphSnapshot,
    scores: Sequence[MinerScore] | None = None,
    caught_up: bool = True,
) -> Leaderboard:
    """The leaderboard of a `RoundRunner` at `graph`: its `scores` (pass the list a
    weight-set just used, or they are computed) and this validator's weights on chain
    (`Chain.weights_of`; None when this hotkey has no uid). What the validator serves,
    and what a local network prints."""
    if scores is None:
        scores = await runner.scores(graph)
    uid = graph.uid_of(runner.chain.hotkey)
    on_chain = None
    if uid is not None:
        on_chain = normalised(await runner.chain.weights_of(uid))
    return build(scores, graph, runner.scoring, on_chain, caught_up)
