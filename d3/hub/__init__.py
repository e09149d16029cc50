"""The Dataset Hub: every tweet validators credited, once, as a Hugging Face dataset.

    python -m d3.hub build DIR <the validator's flags>   # bring DIR up to date
    python -m d3.hub verify DIR                          # check a copy against its index
    python -m d3.hub export DIR OUT --since … --lang …   # a query dataset, via DuckDB
    python -m d3.hub publish DIR DEST                    # a directory, hf:owner/repo, s3://…

The hub is derived, never judged: the validator decides (its verdicts, audits and credit
in Redis), the chain says where each commitment's data lives, the miners' hosts serve the
bytes the manifest hashes pin. `docs/hub.md` has the rules and the layout.

| module | job |
| --- | --- |
| `errors.py` | every error the hub raises, in one tree |
| `schema.py` | the hub's row schema (the record plus provenance) and its Parquet encoding |
| `decisions.py` | a consistent snapshot of what the validator decided |
| `rows.py` | one accepted commitment's rows, fetched and pinned by hash |
| `ledger.py` | the hub's private, transactional memory (claimed IDs, staged rows, files) |
| `layout.py` | the published directory: day partitions, the content-addressed index |
| `card.py` | the dataset card (`README.md` with the YAML header `datasets` reads) |
| `signing.py` | the index signed with the validator's hotkey, and its check |
| `publish.py` | copying a hub to a local directory, resumably |
| `localnet.py` | the hub of a local network (`--hub DIR`) |
| `builder.py` | one incremental update: apply new commitments, publish closed periods, close days |
| `compaction.py` | when a day is closed, and its files merged into its final layout |
| `export.py` | query datasets cut from the hub with DuckDB |
| `cli.py` | `python -m d3.hub` |
"""
