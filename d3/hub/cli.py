"""`python -m d3.hub`: build, verify, export and publish hub datasets.

    python -m d3.hub build DIR [--settled-through BLOCK] <the validator's own flags>
    python -m d3.hub verify DIR [--hotkey SS58]
    python -m d3.hub export HUB OUT [--since DATE] [--until DATE] [--lang L ...]
                                    [--hashtag T ...] [--keyword W ...] [--account A ...]
                                    [--min-engagement N] [--memory-limit 1GB]
    python -m d3.hub publish DIR DEST      # DEST: a directory, hf:owner/repo[@rev], s3://bucket[/prefix]
    python -m d3.hub serve DIR [--host 127.0.0.1] [--port 8080]   # the data page and files

`build` takes every flag the validator runs with (`--netuid`, `--wallet.*`,
`--subtensor.*`, `--redis.*`, `--scoring.*`, ...; `neurons/validator.py --help` lists
them), so it reads that validator's state with the parameters it judges with, and signs
the index with its hotkey. Run it after the validator's rounds (pm2 cron, a timer): each
run is one incremental update.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from d3.chain.interface import ChainUnreachable, SubnetNotFound
from d3.commitment import LocatorKind, parse_locator
from d3.errors import FatalError
from d3.hub.errors import HubError, SignatureInvalid
from d3.hub.export import Query, export
from d3.hub.layout import INDEX_NAME, SIGNATURE_NAME, verify_copy
from d3.hub.publish import publish_hf, publish_local, publish_s3
from d3.hub.signing import verify_signature


def _date(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m d3.hub", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="bring a hub up to date with a validator")
    build.add_argument("dir", type=Path)
    build.add_argument(
        "--settled-through",
        type=int,
        help="structure-only validators: every commitment up to this block is judged",
    )
    verify = commands.add_parser("verify", help="check a copy against its index and signature")
    verify.add_argument("dir", type=Path)
    verify.add_argument("--hotkey", help="require the index to be signed by this hotkey")
    query = commands.add_parser("export", help="a query dataset cut from a hub (DuckDB)")
    query.add_argument("hub", type=Path)
    query.add_argument("out", type=Path)
    query.add_argument("--since", type=_date, help="created at or after (ISO date or time, UTC)")
    query.add_argument("--until", type=_date, help="created before (ISO date or time, UTC)")
    query.add_argument("--lang", action="append", default=[], help="X language tag (repeat)")
    query.add_argument("--hashtag", action="append", default=[], help="hashtag (repeat)")
    query.add_argument("--keyword", action="append", default=[], help="text contains (repeat)")
    query.add_argument("--account", action="append", default=[], help="handle or author id")
    query.add_argument(
        "--min-engagement", type=int, default=0, help="likes+retweets+replies+quotes"
    )
    query.add_argument("--memory-limit", default="1GB", help="DuckDB's memory limit")
    publish = commands.add_parser(
        "publish", help="send a hub to a directory, a Hugging Face repo or S3, resumably"
    )
    publish.add_argument("dir", type=Path)
    publish.add_argument(
        "dest", help="a directory, hf:owner/repo[@revision] or s3://bucket[/prefix]"
    )
    publish.add_argument("--s3-endpoint", help="an S3-compatible endpoint (R2, MinIO, ...)")
    serve = commands.add_parser("serve", help="the hub's data page and files over HTTP")
    serve.add_argument("dir", type=Path)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args, rest = _parser().parse_known_args(argv)
    if args.command != "build" and rest:
        _parser().error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "build":
            return asyncio.run(_build(args.dir, rest, args.settled_through))
        if args.command == "verify":
            return _verify(args.dir, args.hotkey)
        if args.command == "export":
            return _export(args)
        if args.command == "serve":
            return _serve(args.dir, args.host, args.port)
        return _publish(args)
    except (HubError, FatalError, ChainUnreachable, SubnetNotFound) as error:
        print(f"d3.hub: {error}", file=sys.stderr)  # one line: an operator's to fix
        return 1


def _publish(args: argparse.Namespace) -> int:
    dest: str = args.dest
    if dest.startswith(("hf:", "s3://")):
        locator = parse_locator(dest)
        if locator.kind is LocatorKind.HF:
            report = publish_hf(
                args.dir,
                locator.target,
                revision=locator.extra or "main",
                token=os.environ.get("HF_TOKEN"),
            )
        else:
            import boto3  # credentials from boto3's usual chain

            client = boto3.client("s3", endpoint_url=args.s3_endpoint)
            report = publish_s3(args.dir, locator.target, client, prefix=locator.extra)
    else:
        report = publish_local(args.dir, Path(dest))
    print(
        f"published {args.dir} to {dest}: {report.copied} files sent ({report.bytes} bytes), "
        f"{report.skipped} already there"
    )
    return 0


def _serve(directory: Path, host: str, port: int) -> int:
    import signal
    import threading

    from d3.hub.serve import serve_hub

    if not directory.is_dir():
        raise HubError(f"{directory}: no such directory")
    try:
        server = serve_hub(directory, host, port)
    except OSError as error:
        raise HubError(f"cannot serve on {host}:{port}: {error.strerror or error}") from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"serving {directory} on {server.url}/ (data page; files under /files/)", flush=True)
    with server:
        stop.wait()
    return 0


def _verify(directory: Path, hotkey: str | None) -> int:
    index = verify_copy(directory)
    signature = directory / SIGNATURE_NAME
    signer = "unsigned"
    if signature.exists():
        signer = "signed by " + verify_signature(
            (directory / INDEX_NAME).read_bytes(), signature.read_bytes(), hotkey
        )
    elif hotkey is not None:
        raise SignatureInvalid(f"{directory} has no {SIGNATURE_NAME}")
    print(f"{directory}: {len(index['files'])} files, {index['rows']} rows, all match; {signer}")
    return 0


def _export(args: argparse.Namespace) -> int:
    query = Query(
        since=args.since,
        until=args.until,
        languages=tuple(args.lang),
        hashtags=tuple(args.hashtag),
        keywords=tuple(args.keyword),
        accounts=tuple(args.account),
        min_engagement=args.min_engagement,
    )

    def progress(day: str, done: int, total: int, rows: int) -> None:
        print(f"export: {day} ({done}/{total} days), {rows} rows", file=sys.stderr, flush=True)

    report = export(args.hub, args.out, query, progress, memory_limit=args.memory_limit)
    print(
        f"exported {report.rows} rows in {report.files} files to {args.out} "
        f"({report.days} days scanned, {report.resumed} done before)"
    )
    return 0


async def _build(directory: Path, flags: list[str], settled: int | None) -> int:
    from d3.chain.sdk import open_chain
    from d3.config import parse_or_exit
    from d3.hub.builder import HubBuilder
    from d3.redis_url import connect_redis
    from d3.startup import load_wallet
    from d3.validator.neuron import ValidatorConfig, build_runner

    config = parse_or_exit(ValidatorConfig, "python -m d3.hub build DIR", "", flags)
    wallet = load_wallet(config.wallet)  # the index is signed with this hotkey
    redis = connect_redis(config.redis.url, cluster=config.redis.cluster)
    try:
        async with open_chain(config.subtensor, wallet, config.netuid) as chain:
            runner = build_runner(config, chain, redis)
            builder = HubBuilder.for_runner(directory, runner, wallet.hotkey)
            try:
                report = await builder.update(settled)
            finally:
                builder.close()
                await runner.pipeline.fetcher.close()
    finally:
        await redis.aclose()
    print(f"{directory}: {report.summary()}")
    return 0
