"""A real headless Chromium (Debian's `chromium`), and the DOM it renders, for page tests.

Each render is one `chromium --headless` run with a fresh profile: `--dump-dom` prints
the DOM after the page's scripts ran, `--screenshot` writes a PNG. Both use
`--virtual-time-budget`: the browser's clock only advances while nothing is loading, so
a page's fetches finish before the DOM is taken however slow the machine is (the budget
is virtual time, not a sleep). Flags as this machine's notes require: no sandbox as root,
no background networking (a closed network refuses it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio",
)  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


def find_chromium() -> str | None:
    explicit = os.environ.get("D3_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def artifacts_dir() -> Path:
    """Where screenshots are kept (D3_TEST_ARTIFACTS, or .artifacts/ in the work tree)."""
    path = Path(os.environ.get("D3_TEST_ARTIFACTS", ROOT / ".artifacts")) / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def walk(self):
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.walk()

    def find(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Descendants with `tag` whose attributes include `attrs` (`cls` for class,
        matching one class name; a `data_x` name stands for `data-x`)."""
        out = []
        for node in self.walk():
            if tag is not None and node.tag != tag:
                continue
            ok = True
            for name, value in attrs.items():
                if name == "cls":
                    ok = value in node.attrs.get("class", "").split()
                else:
                    ok = node.attrs.get(name.replace("_", "-")) == value
                if not ok:
                    break
            if ok:
                out.append(node)
        return out

    def by_id(self, ident: str) -> Element:
        found = self.find(id=ident)
        assert found, f"no element with id {ident!r}"
        return found[0]

    def table(self) -> list[list[str]]:
        """The rows of the first table below this element, as cell texts (header first)."""
        tables = self.find("table")
        assert tables, "no table here"
        rows = tables[0].find("tr")
        return [[c.text for c in tr.children if isinstance(c, Element)] for tr in rows]


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(html)
    return builder.root


class Browser:
    def __init__(self, binary: str, budget_ms: int = 15_000):
        self.binary = binary
        self.budget_ms = budget_ms

    def _run(self, url: str, width: int, height: int, *extra: str) -> str:
        with tempfile.TemporaryDirectory(prefix="d3-chromium-") as profile:
            argv = [
                self.binary, *FLAGS, f"--user-data-dir={profile}",
                f"--window-size={width},{height}", f"--virtual-time-budget={self.budget_ms}",
                *extra, url,
            ]  # fmt: skip
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"chromium failed on {url}: {done.stderr[-2000:]}"
        return done.stdout

    def dom(self, url: str, width: int = 1280, height: int = 1000) -> Element:
        return parse(self._run(url, width, height, "--dump-dom"))

    def screenshot(self, url: str, name: str, width: int = 1280, height: int = 1600) -> Path:
        path = artifacts_dir() / f"{name}.png"
        self._run(url, width, height, f"--screenshot={path}")
        assert path.stat().st_size > 0, f"no screenshot of {url}"
        return path
