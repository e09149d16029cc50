"""Page tests run a real headless Chromium. `.ci/run` installs Debian's `chromium` and
sets D3_REQUIRE_BROWSER=1, so there a missing browser fails; elsewhere these tests skip
with the command that installs it."""

from __future__ import annotations

import os

import pytest

from .browser import Browser, find_chromium


@pytest.fixture(scope="session")
def browser() -> Browser:
    binary = find_chromium()
    if binary is None:
        if os.environ.get("D3_REQUIRE_BROWSER") == "1":
            pytest.fail("no chromium on PATH (D3_REQUIRE_BROWSER=1): apt-get install chromium")
        pytest.skip("no chromium on PATH: apt-get install chromium (or set D3_CHROMIUM)")
    return Browser(binary)
