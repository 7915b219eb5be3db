"""``recsys``'s public names: each resolves to the object its home module defines, and
``import recsys`` alone loads none of the heavy modules."""

from __future__ import annotations

import importlib
import subprocess
import sys

import recsys


def test_every_public_name_is_its_home_modules_object() -> None:
    assert sorted(recsys.__all__) == sorted(recsys._HOME)
    for name in recsys.__all__:
        home = importlib.import_module(recsys._HOME[name])
        assert getattr(recsys, name) is getattr(home, name), name


def test_importing_recsys_loads_no_model_code() -> None:
    code = "import sys, recsys; print(sorted(m for m in sys.modules if m.startswith('recsys.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"
