"""No function in recsys/ or serving/ above McCabe complexity 15 (ruff's C901, configured in
pyproject.toml), checked with the tests because CI runs `make test`, not `make lint`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_no_function_above_complexity_15() -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "C901",
                           "--output-format", "concise", "recsys", "serving"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
