"""The published directory, a Hugging Face dataset repository as it stands:

    DIR/README.md                                 the dataset card (card.py)
    DIR/index.json                                every file with its sha256, bytes, rows
    DIR/index.sig                                 the index signed by the builder's hotkey
    DIR/data/<YYYY-MM-DD>/period-<period>.parquet an open day: the rows of one credit period
                                                  created that day (UTC), sorted by id
    DIR/data/<YYYY-MM-DD>/part-<nnnnn>.parquet    a closed day: all its rows, sorted by id,
                                                  in files of at most 1,000,000 rows
    DIR/.hub/                                     the builder's private state (ledger.py)

A period file holds the published rows of one period created on one day: its contents are
fixed once the period's audits are done, so it is written once and never rewritten. When
no commitment can add rows to a day any more (compaction.py), the day's period files are
replaced by its part files, which depend on the day's rows alone. So every file's name
and bytes depend on the chain alone, not on when or how often a builder ran. The
index is canonical JSON (sorted keys, no spaces), so equal hubs have equal indexes; it is
the one file to trust: it pins every other file by hash, the card included.

`data/` holds Parquet only, so `pyarrow.dataset`, pandas, Polars and DuckDB read
`DIR/data` with no options, and `datasets.load_dataset(DIR)` follows the card's configs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from d3.hub.errors import HubCorrupt
from d3.hub.ledger import FileEntry

INDEX_NAME = "index.json"
SIGNATURE_NAME = "index.sig"
CARD_NAME = "README.md"
DATA_DIR = "data"
STATE_DIR = ".hub"
DATA_GLOB = "data/*/*.parquet"
PART_PREFIX = "part-"


def data_path(day: str, period: int) -> str:
    """An open day's file of one credit period."""
    return f"{DATA_DIR}/{day}/period-{period:08d}.parquet"


def part_path(day: str, number: int) -> str:
    """A closed day's `number`th file (in id order)."""
    return f"{DATA_DIR}/{day}/{PART_PREFIX}{number:05d}.parquet"


def day_of(path: str) -> str:
    """The day (YYYY-MM-DD) of a data file's path."""
    return path.split("/")[1]


def is_part(path: str) -> bool:
    return path.rsplit("/", 1)[-1].startswith(PART_PREFIX)


def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def index_document(netuid: int, files: list[FileEntry], card: bytes) -> dict:
    return {
        "card": {"path": CARD_NAME, "sha256": sha256_hex(card), "bytes": len(card)},
        "files": [
            {"path": f.path, "sha256": f.sha256, "bytes": f.bytes, "rows": f.rows}
            for f in sorted(files, key=lambda f: f.path)
        ],
        "format": "d3-hub-index-v1",
        "netuid": netuid,
        "rows": sum(f.rows for f in files),
    }


def verify_copy(directory: Path) -> dict:
    """Check every file the index names against its hash, and that `data/` holds nothing
    else. Returns the index; raises HubCorrupt naming the first mismatch."""
    try:
        index = json.loads((directory / INDEX_NAME).read_bytes())
    except (OSError, ValueError) as error:
        raise HubCorrupt(f"{INDEX_NAME}: {error}") from None
    entries = [*index["files"], index["card"]]
    for entry in entries:
        path = directory / entry["path"]
        try:
            data = path.read_bytes()
        except OSError:
            raise HubCorrupt(f"{entry['path']}: missing") from None
        if len(data) != entry["bytes"] or sha256_hex(data) != entry["sha256"]:
            raise HubCorrupt(f"{entry['path']}: bytes do not match the index")
    listed = {e["path"] for e in index["files"]}
    present = (
        {
            p.relative_to(directory).as_posix()
            for p in (directory / DATA_DIR).rglob("*")
            if p.is_file() and not p.name.startswith(".")
        }
        if (directory / DATA_DIR).exists()
        else set()
    )
    extra = sorted(present - listed)
    if extra:
        raise HubCorrupt(f"{extra[0]}: not in the index")
    return index
