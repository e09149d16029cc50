"""The validator's dashboard (`--dashboard.port`): what it scores, judges and spends.

    /                        the leaderboard (the read model that sets weights)
    /miner/<hotkey>          one miner: credit per period, commitments with verdicts and
                             reasons, audits on X
    /network                 index, look-ups, rounds, weight-sets, commit-reveal, health
    /data                    the hub's data (`--dashboard.hub DIR`, a `python -m d3.hub
                             build` directory)
    /api/<page>.json         each page's JSON (the page draws itself from it)

Pages are read in the server's thread from snapshots the validator's loop swaps in whole
after each round (`Validator.leaderboard`, `Validator.view`, the metrics registry). A
miner's page is the one read that goes to Redis: it is run on the validator's event loop
and given a deadline, so a busy or stuck loop makes that page answer 503, never hang.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from d3.chain.interface import ChainVerdict
from d3.hub.card import X_TERMS
from d3.hub.stats import HubStatsCache
from d3.web.pages import page
from d3.web.server import Request, Response, Route, json_route, static_route

SS58 = re.compile(r"[1-9A-HJ-NP-Za-km-z]{46,48}")
ROUNDS_KEPT = 120
COMMITMENTS_SHOWN = 200


def brief(error: BaseException, limit: int = 300) -> str:
    """An error as one short line for a page (the log has the rest)."""
    text = str(error).strip().splitlines()
    line = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class RoundRecord:
    block: int
    seconds: float
    outcome: str  # ok or failed
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    new_unique: int = 0


@dataclass(frozen=True)
class Outcome:
    """A chain verdict as the dashboard shows it."""

    ok: bool
    message: str
    code: str | None = None
    block: int | None = None

    @classmethod
    def of(cls, verdict: ChainVerdict) -> Outcome:
        return cls(verdict.ok, verdict.message, verdict.code, verdict.block)


@dataclass(frozen=True)
class NetworkView:
    """What the loop saw, beyond the metrics: replaced whole (`dataclasses.replace`), so
    the server's thread always reads one consistent view."""

    rounds: tuple[RoundRecord, ...] = ()
    last_weight_set: Outcome | None = None
    last_reveal: Outcome | None = None
    commit_reveal: bool | None = None  # None: not read yet
    chain_error: str | None = None
    redis_error: str | None = None
    credits: Mapping[str, Mapping[int, int]] = field(default_factory=dict)

    def with_round(self, record: RoundRecord) -> NetworkView:
        return dataclasses.replace(self, rounds=(*self.rounds, record)[-ROUNDS_KEPT:])


class ValidatorDashboard:
    """The routes of one validator's dashboard. `validator` is the running `Validator`
    (read, never driven); `loop` is the event loop it runs on."""

    NAV = (("Leaderboard", "/"), ("Network", "/network"))

    def __init__(
        self,
        validator: Any,
        loop: asyncio.AbstractEventLoop,
        hub: Path | None = None,
        refresh_s: float = 15,
        read_timeout_s: float = 10,
    ):
        self.validator = validator
        self.loop = loop
        self.hub = HubStatsCache(hub) if hub is not None else None
        self.refresh_s = refresh_s
        self.read_timeout_s = read_timeout_s
        self.nav = self.NAV + ((("Data", "/data"),) if hub is not None else ())

    def routes(self) -> list[Route]:
        v = self.validator
        routes = [
            Route("/", self._page("leaderboard", "Leaderboard", "/api/leaderboard.json", "/")),
            Route("/network", self._page("network", "Network", "/api/network.json", "/network")),
            Route("/miner/", self._miner_page),
            json_route("/api/leaderboard.json", v.leaderboard_json, "no round has finished yet"),
            json_route("/api/network.json", self.network_json, "no round has finished yet"),
            Route("/api/miner/", self._miner_json),
            static_route(),
        ]
        if self.hub is not None:
            intro = f"The hub in {self.hub.directory}: every tweet validators credited, once."
            routes.append(
                Route("/data", self._page("data", "Data", "/api/data.json", "/data", intro))
            )
            routes.append(json_route("/api/data.json", self.data_json, "no hub built there yet"))
        return routes

    def _page(self, kind: str, title: str, api: str, here: str, intro: str = ""):
        html = page(kind, title, api, self.nav, here, self.refresh_s, intro)
        return lambda _request: Response.html(html)

    # -- miner pages ------------------------------------------------------------------------

    def _hotkey(self, request: Request, suffix: str = "") -> str | None:
        name = request.path
        if suffix:
            if not name.endswith(suffix):
                return None
            name = name[: -len(suffix)]
        return name if SS58.fullmatch(name) else None

    def _miner_page(self, request: Request) -> Response | None:
        hotkey = self._hotkey(request)
        if hotkey is None:
            return None
        api = f"/api/miner/{hotkey}.json"
        return Response.html(page("miner", f"Miner {hotkey}", api, self.nav, "", self.refresh_s))

    def _miner_json(self, request: Request) -> Response | None:
        hotkey = self._hotkey(request, ".json")
        if hotkey is None:
            return None
        future = asyncio.run_coroutine_threadsafe(self.miner_detail(hotkey), self.loop)
        try:
            detail = future.result(self.read_timeout_s)
        except TimeoutError:
            future.cancel()
            return Response.json({"error": "the validator is busy: try again shortly"}, 503)
        except Exception as error:  # Redis down: the page says so, the neuron goes on
            return Response.json({"error": f"cannot read this miner's ledger: {error}"}, 503)
        if detail is None:
            return Response.json({"error": f"no miner with hotkey {hotkey} here"}, 404)
        return Response.json(detail)

    async def miner_detail(self, hotkey: str) -> dict[str, Any] | None:
        """One miner's page: its leaderboard row, credit per period (as credited, and as
        it counts after the period's audit), its commitments' verdicts and its audits."""
        v = self.validator
        state = v.runner.state
        board = v.leaderboard
        row = next((r for r in board.rows if r.hotkey == hotkey), None) if board else None
        verdicts = await state.verdicts(hotkey)
        audits = await state.audits_of(hotkey)
        credits = v.view.credits.get(hotkey, {})
        if row is None and not verdicts and not audits and not credits:
            return None
        period_blocks = v.runner.scoring.period_blocks
        credit = []
        for period in sorted(credits):
            audit = audits.get(period)
            found, checked = audit[0].factor if audit is not None else (None, None)
            credit.append(
                {
                    "period": period,
                    "first_block": period * period_blocks,
                    "credited": credits[period],
                    # None until the period is audited: then the share of its sample X found
                    "counted": None if checked is None else credits[period] * found // checked,
                }
            )
        return {
            "hotkey": hotkey,
            "uid": row.uid if row is not None else None,
            "row": dataclasses.asdict(row) if row is not None else None,
            "block": board.block if board else None,
            "period_blocks": period_blocks,
            "credit": credit,
            "commitments": [
                {
                    "block": x.block,
                    "manifest": x.manifest_sha256,
                    "accepted": x.accepted,
                    "counts": x.counts,
                    "reason": x.reason,
                    "new_unique": x.new_unique,
                }
                for x in reversed(verdicts[-COMMITMENTS_SHOWN:])
            ],
            "audits": [
                {
                    "period": period,
                    "checked": result.checked,
                    "found": result.found,
                    "altered": result.altered,
                    "accepted": verdict.accepted if verdict is not None else True,
                    "counts": verdict.counts if verdict is not None else False,
                    "reason": result.reason or (verdict.reason if verdict is not None else ""),
                }
                for period, (result, verdict) in sorted(audits.items(), reverse=True)
            ],
        }

    # -- the network ------------------------------------------------------------------------

    def network_json(self) -> dict[str, Any] | None:
        v = self.validator
        board = v.leaderboard
        if board is None:
            return None
        registry = v.metrics.registry

        def sample(name: str, **labels: str) -> float:
            return registry.get_sample_value(name, labels) or 0.0

        view: NetworkView = v.view
        budget = v.runner.budget
        healthy, health = v.health.status()
        spent = sum(
            sample("d3_validator_lookups_total", answer=a) for a in ("found", "missing", "failed")
        )
        redis_down = v.redis_down_for_s()
        return {
            "netuid": board.netuid,
            "block": board.block,
            "caught_up": board.caught_up,
            "queue": int(sample("d3_validator_queue_size")),
            "index_ids": int(sample("d3_validator_index_credited_ids")),
            "miners_with_weight": int(sample("d3_validator_miners_with_weight")),
            "audits_waiting": int(sample("d3_validator_audits_waiting")),
            "audits_provisional": int(sample("d3_validator_audits_provisional")),
            "lookups": {
                "daily": budget.daily if budget is not None else 0,
                "burst": budget.burst if budget is not None else 0,
                "available": int(budget.available) if budget is not None else 0,
                "spent": int(spent),
            },
            "rounds": [dataclasses.asdict(r) for r in view.rounds],
            "weights": {
                "interval": v.config.neuron.weights_interval,
                "last_block": int(sample("d3_validator_last_weights_block")) or None,
                "last": dataclasses.asdict(view.last_weight_set) if view.last_weight_set else None,
            },
            "commit_reveal": {
                "enabled": view.commit_reveal,
                "pending_block": v.chain.pending_reveal_block,
                "last": dataclasses.asdict(view.last_reveal) if view.last_reveal else None,
            },
            "chain": {
                "errors": int(sample("d3_validator_chain_errors_total")),
                "last_error": view.chain_error,
            },
            "redis": {
                "errors": int(sample("d3_validator_redis_errors_total")),
                "last_error": view.redis_error,
                "down_for_s": redis_down,
            },
            "health": {**health, "ok": healthy},
        }

    def data_json(self) -> dict[str, Any] | None:
        assert self.hub is not None
        stats = self.hub.read()
        return None if stats is None else {**stats, "terms": X_TERMS}
