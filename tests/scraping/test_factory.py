"""The source registry: its kinds are the neurons' choices, its extras are setup.py's, and a
source that cannot be built says which flag to set or what to install. The dishonest
sources of a local network are a dev-only flag of the miner, never a kind."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import get_args

import pytest

from d3.config import ConfigError
from d3.dev.adversaries import CopySource, DilutingSource, FabricatingSource
from d3.miner.neuron import SourceSection, build_source
from d3.validator.neuron import VerifySection
from scraping.factory import SOURCES, SourceKind
from scraping.factory import build_source as build_real_source
from scraping.source import SourceConfigError, SourceSettings, install_hint
from scraping.x_api import XApiSource

ROOT = Path(__file__).resolve().parents[2]


def _extras() -> set[str]:
    """The keys of setup.py's `extras_require`, read without running setup()."""
    for node in ast.walk(ast.parse((ROOT / "setup.py").read_text())):
        if isinstance(node, ast.keyword) and node.arg == "extras_require":
            assert isinstance(node.value, ast.Dict)
            return {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    raise AssertionError("setup.py has no extras_require")


def test_the_registry_is_every_choice_of_both_neurons() -> None:
    assert tuple(SOURCES) == get_args(SourceKind) == ("x_api", "twscrape", "apify")
    for field in (SourceSection.model_fields["kind"], VerifySection.model_fields["lookup_kind"]):
        assert get_args(field.annotation) == tuple(SOURCES)


def test_every_extra_is_one_setup_py_installs() -> None:
    extras = _extras()
    for entry in SOURCES.values():
        assert entry.extra is None or entry.extra in extras, entry.kind
    assert {e.kind: e.extra for e in SOURCES.values()} == {
        "x_api": None,
        "twscrape": "twscrape",
        "apify": "apify",
    }


@pytest.mark.parametrize(
    ("kind", "prefix", "message"),
    [
        ("x_api", "--source", "--source.x_bearer_token (or D3_SOURCE_X_BEARER_TOKEN) is required"),
        ("x_api", "--verify", "--verify.x_bearer_token (or D3_VERIFY_X_BEARER_TOKEN) is required"),
        ("apify", "--verify", "--verify.apify_token (or D3_VERIFY_APIFY_TOKEN) is required"),
    ],
)
def test_a_missing_setting_names_its_flag(kind: str, prefix: str, message: str) -> None:
    with pytest.raises(SourceConfigError) as info:
        build_real_source(kind, SourceSettings(flag_prefix=prefix))
    assert str(info.value) == message


def test_an_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(SourceConfigError, match="one of: x_api, twscrape, apify"):
        build_real_source("copier", SourceSettings())


@pytest.mark.parametrize(("kind", "module"), [("twscrape", "twscrape"), ("apify", "apify_client")])
def test_a_kind_without_its_extra_says_what_to_install(
    kind: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    monkeypatch.setenv("TWS_TELEMETRY", "0")
    with pytest.raises(SourceConfigError) as info:
        build_real_source(kind, SourceSettings(apify_token="t"))
    assert install_hint(SOURCES[kind].extra or "") in str(info.value)
    assert "\n" not in str(info.value)


def test_the_settings_reach_the_source() -> None:
    settings = SourceSettings(x_bearer_token="t", x_api_base_url="http://127.0.0.1:1")
    assert isinstance(build_real_source("x_api", settings), XApiSource)


# -- the dev roles ------------------------------------------------------------------------


def test_dev_roles_are_refused_outside_a_dev_chain() -> None:
    for role in ("copier", "fabricator", "diluter"):
        with pytest.raises(ConfigError, match="only to demo a dev chain"):
            build_source(SourceSection(adversary=role, copy_from="/tmp"), dev_chain=False)
    with pytest.raises(ValueError, match="kind"):
        SourceSection(kind="copier")  # not a source kind at all


def test_dev_roles_on_a_dev_chain(tmp_path: Path) -> None:
    assert isinstance(build_source(SourceSection(adversary="fabricator"), True), FabricatingSource)
    with pytest.raises(ConfigError, match=r"--source\.copy_from is required"):
        build_source(SourceSection(adversary="copier"), True)
    copier = build_source(SourceSection(adversary="copier", copy_from=str(tmp_path)), True)
    assert isinstance(copier, CopySource) and copier.directory == tmp_path
    # The diluter scrapes through --source.kind's source, so it needs that source's flags.
    with pytest.raises(ConfigError, match=r"--source\.x_bearer_token"):
        build_source(SourceSection(adversary="diluter"), True)
    diluter = build_source(SourceSection(adversary="diluter", x_bearer_token="t"), True)
    assert isinstance(diluter, DilutingSource) and isinstance(diluter.inner, XApiSource)
