"""Migrate the tweet-ID index from layout v1 to v2 in place: the one explicit upgrade step.

    pm2 stop d3-validator            # every validator writing to this Redis and prefix
    python -m d3.validator.index_migrate --redis.url redis://127.0.0.1:6379/0 --redis.prefix d3
    pm2 start d3-validator

v1 windows are valid v2 bases as they are; the step only turns the groups set and each
group's token hash into sorted sets (a few thousand small keys: seconds), and it may be
run again safely. From its first key on, a v1 writer fails with WRONGTYPE before writing
anything, and a v2 writer refuses an index that is not (yet) fully migrated.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from d3.redis_url import connect_redis
from d3.validator.index import TweetIndex


async def migrate(url: str, prefix: str, cluster: bool) -> tuple[str, int, str]:
    """(layout before, keys converted, layout after)."""
    client = connect_redis(url, cluster=cluster)
    try:
        index = TweetIndex(client, prefix)
        before = await index.layout()
        converted = await index.migrate()
        return before, converted, await index.layout()
    finally:
        await client.aclose()


def _env(name: str, default: str) -> str:
    """The validator's own setting (D3_VALIDATOR_*) wins over the shared one (D3_*)."""
    return os.environ.get(f"D3_VALIDATOR_{name}") or os.environ.get(f"D3_{name}") or default


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--redis.url",
        dest="url",
        default=_env("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the validator's Redis (default: as the validator reads it from the "
        "environment, else redis://127.0.0.1:6379/0)",
    )
    parser.add_argument(
        "--redis.prefix",
        dest="prefix",
        default=_env("REDIS_PREFIX", "d3"),
        help="the validator's key prefix (default: from the environment, else d3)",
    )
    parser.add_argument(
        "--redis.cluster", dest="cluster", action="store_true", help="the URL is a cluster node"
    )
    args = parser.parse_args(argv)
    before, converted, after = asyncio.run(migrate(args.url, args.prefix, args.cluster))
    print(f"index {args.prefix!r}: layout {before} -> {after} ({converted} keys converted)")


if __name__ == "__main__":
    main()
