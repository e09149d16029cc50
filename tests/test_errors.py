"""The documented error tree (d3/errors.py) names every exception class the project
defines, and pydantic errors become one line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError, field_validator

import d3.errors
from d3.errors import field_path, first_error

ROOT = Path(__file__).resolve().parents[1]
BUILTIN_BASES = {"Exception", "ValueError", "RuntimeError", "OSError", "LookupError"}


def _exception_classes() -> dict[str, str]:
    """name -> file of every public exception class in d3/ and scraping/."""
    classes: dict[str, tuple[str, list[str]]] = {}
    for path in sorted([*ROOT.glob("d3/**/*.py"), *ROOT.glob("scraping/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
                classes[node.name] = (str(path.relative_to(ROOT)), bases)
    found = {n for n, (_, bases) in classes.items() if BUILTIN_BASES & set(bases)}
    while grown := {n for n, (_, b) in classes.items() if found & set(b)} - found:
        found |= grown
    return {n: classes[n][0] for n in found if not n.startswith("_")}


def test_every_exception_class_is_in_the_error_tree() -> None:
    tree = d3.errors.__doc__ or ""
    missing = {name: path for name, path in _exception_classes().items() if name not in tree}
    assert not missing, f"add these to the tree in d3/errors.py: {missing}"


class Plan(BaseModel):
    name: str
    tags: list[str] = []

    @field_validator("tags")
    @classmethod
    def _no_spaces(cls, value: list[str]) -> list[str]:
        if any(" " in tag for tag in value):
            raise ValueError("a tag has a space")
        return value


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ({"name": "a", "tags": ["x y"]}, "tags: a tag has a space"),
        ({"name": "a", "tags": ["ok", 3]}, "tags[1]: Input should be a valid string"),
        ({}, "name: Field required"),
    ],
)
def test_a_validation_error_is_one_line_naming_the_field(data, line) -> None:
    with pytest.raises(ValidationError) as info:
        Plan.model_validate(data)
    first = first_error(info.value)
    assert str(first) == line
    assert first.raw_message.endswith(first.message)


def test_a_location_reads_as_written() -> None:
    assert field_path(("queries", 0, "hashtags")) == "queries[0].hashtags"
    assert field_path(()) == ""
