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


def _doc_commands(prefix: str) -> list[tuple[str, str]]:
    """(file, command) for every shell line in README.md and docs/ that starts `prefix`."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            command = line.strip()
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command = command[:-1] + " " + lines[i].strip()
            if command.startswith(prefix):
                out.append((path.name, command.split("#", 1)[0].strip()))
    return out


def test_every_btcli_command_in_the_docs_parses_with_the_pinned_btcli():
    """They need the network to run; `--help` after the options makes the pinned btcli
    parse every option (an unknown one exits 2) without running anything."""
    import shlex
    import subprocess
    import sys

    btcli = Path(sys.executable).with_name("btcli")
    commands = _doc_commands("btcli ")
    assert commands, "the docs show how to create a wallet and register"
    for name, command in commands:
        argv = [str(btcli), *shlex.split(command.replace("<D3 netuid>", "1"))[1:], "--help"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{name}: {command}: {result.stdout[-500:]}"


def test_every_neuron_command_in_the_docs_parses():
    """The documented neuron commands, with placeholders filled in, pass flag validation
    (`--help` ends them before anything connects)."""
    import shlex
    import subprocess
    import sys

    commands = _doc_commands("python neurons/")
    assert len(commands) >= 2
    for name, command in commands:
        argv = shlex.split(command.replace("<netuid>", "1"))
        result = subprocess.run(
            [sys.executable, *argv[1:], "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert result.returncode == 0, f"{name}: {command}: {result.stderr[-500:]}"
