"""Documentation that is derived from code must match it."""

from pathlib import Path

from d3.validator.mechanism_doc import render

ROOT = Path(__file__).resolve().parents[1]


def test_incentive_mechanism_doc_matches_the_code():
    committed = (ROOT / "docs" / "incentive-mechanism.md").read_text()
    assert committed == render(), (
        "docs/incentive-mechanism.md is stale: "
        "python -m d3.validator.mechanism_doc > docs/incentive-mechanism.md"
    )


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    head = readme[: readme.index("## ")]
    assert "./scripts/localnet" in head and "./scripts/test" in head
    for name in ("localnet", "test"):
        assert (ROOT / "scripts" / name).stat().st_mode & 0o111
