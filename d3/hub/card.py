"""The dataset card: `README.md` with the YAML header the Hugging Face `datasets` library
(and the Hub's viewer) reads, and a body that says what the data is and how it was made.

Rendered from the ledger only (files, rows, outcomes), never from the clock or the
machine, so equal hubs have equal cards. `export.py` renders its cards with `render_card`
too, with its own title, description and query.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from d3.hub.layout import DATA_GLOB
from d3.hub.schema import HUB_SCHEMA, NOTE

X_TERMS_URL = "https://developer.x.com/en/developer-terms/agreement-and-policy"
X_TERMS = (
    "Tweets are X Corp content, published by their authors. The X Developer Agreement and "
    "Policy restricts storing, redistributing and training on X content; whoever uses this "
    f"dataset is responsible for doing so within the terms that apply to them ({X_TERMS_URL}). "
    "D3's MIT licence covers the code that built it, not the tweets."
)


@dataclass(frozen=True)
class CardFacts:
    title: str
    description: str
    rows: int
    files: int
    rows_by_day: dict[str, int]
    sections: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (heading, markdown)
    files_per_day: str = "one file per credit period"
    signed: bool = True  # the text is the same whether this copy has a signature or not
    open_days: frozenset[str] | None = None  # days that can still grow (None: not shown)


def hf_feature(arrow_type: pa.DataType) -> dict:
    """The `dataset_info.features` entry for an Arrow type of the hub schema."""
    if pa.types.is_list(arrow_type):
        return {"sequence": hf_feature(arrow_type.value_type)["dtype"]}
    if pa.types.is_timestamp(arrow_type):
        return {"dtype": f"timestamp[{arrow_type.unit}, tz={arrow_type.tz}]"}
    if pa.types.is_string(arrow_type):
        return {"dtype": "string"}
    if pa.types.is_integer(arrow_type):
        return {"dtype": str(arrow_type)}
    raise ValueError(f"no Hugging Face feature for {arrow_type}")


def size_category(rows: int) -> str:
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ]
    for bound, label in bounds:
        if rows < bound:
            return label
    return "1B<n<10B"


def _yaml_header(facts: CardFacts, schema: pa.Schema) -> list[str]:
    lines = [
        "---",
        "license: other",
        "license_name: x-developer-terms",
        f"license_link: {X_TERMS_URL}",
        f"pretty_name: {json.dumps(facts.title)}",  # a JSON string is a YAML string
        "task_categories:",
        "- text-generation",
        "- text-classification",
        "tags:",
        "- bittensor",
        "- twitter",
        "- tweets",
        "size_categories:",
        f"- {size_category(facts.rows)}",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        f"    path: {DATA_GLOB}",
        "dataset_info:",
        "  features:",
    ]
    for arrow_field in schema:
        feature = hf_feature(arrow_field.type)
        lines.append(f"  - name: {arrow_field.name}")
        for key, value in feature.items():
            lines.append(f"    {key}: {value}")
    lines += [
        "  splits:",
        "  - name: train",
        f"    num_examples: {facts.rows}",
        "---",
    ]
    return lines


def md_table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    header = list(header)
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _days_table(facts: CardFacts, days: list[str]) -> str:
    if facts.open_days is None:
        return md_table(["day", "tweets"], [(d, f"{facts.rows_by_day[d]:,}") for d in days])
    return md_table(
        ["day", "tweets", "state"],
        [
            (d, f"{facts.rows_by_day[d]:,}", "open" if d in facts.open_days else "closed")
            for d in days
        ],
    )


def render_card(facts: CardFacts, schema: pa.Schema = HUB_SCHEMA) -> bytes:
    days = sorted(facts.rows_by_day)
    span = f"{days[0]} to {days[-1]}" if days else "none yet"
    body = [
        f"# {facts.title}",
        "",
        facts.description,
        "",
        f"**{facts.rows:,} tweets** in {facts.files:,} Parquet files, created {span} (UTC).",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("path/or/repo", split="train")',
        "",
        "import duckdb",
        "duckdb.sql(\"SELECT lang, count(*) FROM 'data/*/*.parquet' GROUP BY lang\")",
        "",
        "import pandas as pd, pyarrow.dataset as pads",
        'df = pd.read_parquet("data")',
        'table = pads.dataset("data").to_table()',
        "```",
        "",
        f"`data/<YYYY-MM-DD>/` holds the tweets created that day (UTC), {facts.files_per_day}, "
        "each sorted by `id` and zstd-compressed. `index.json` lists every file with its "
        "SHA-256 (this card included)"
        + (
            "; `index.sig`, where present, is the index signed by the hotkey of the validator "
            "that built it"
            if facts.signed
            else ""
        )
        + ". Check a copy with `python -m d3.hub verify DIR`.",
        "",
        "## Columns",
        "",
        md_table(
            ["column", "type", "note"],
            [
                (f"`{f.name}`", f"`{f.type}`", (f.metadata or {}).get(NOTE.encode(), b"").decode())
                for f in schema
            ],
        ),
        "",
    ]
    for heading, text in facts.sections:
        body += [f"## {heading}", "", text, ""]
    body += [
        "## Rows per day",
        "",
        _days_table(facts, days) if days else "No rows yet.",
        "",
        "## Licence and X's terms",
        "",
        X_TERMS,
        "",
    ]
    return ("\n".join(_yaml_header(facts, schema)) + "\n\n" + "\n".join(body)).encode()
