"""The tree is ruff clean (lint and format), so CI refuses what review would."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_and_format_are_clean():
    ruff = Path(sys.executable).with_name("ruff")
    for argv in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run(
            [str(ruff), *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"ruff {' '.join(argv)}:\n{done.stdout[-3000:]}"
