"""The notebooks (issue 10) run top to bottom on the project's kernel and are stored stripped."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("notebooks_run", REPO / "notebooks" / "run.py")
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def _outputs(nb: nbformat.NotebookNode, kind: str) -> list[nbformat.NotebookNode]:
    return [o for c in _code_cells(nb) for o in c.outputs if o.output_type == kind]


def test_the_three_notebooks_are_committed_without_outputs():
    assert [p.name for p in runner.NOTEBOOKS] == [
        "01_explore_data.ipynb", "02_compare_models.ipynb", "03_segments_and_coupons.ipynb"]
    for path in runner.NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                 and (c.outputs or c.execution_count is not None)]
        assert _code_cells(nb) and not dirty, f"{path.name}: cells {dirty} keep outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", runner.NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))  # the kernel inherits it
    nb, seconds = runner.execute(path, timeout=600)  # raises CellExecutionError on failure
    assert all(c.execution_count for c in _code_cells(nb))
    assert not _outputs(nb, "error")
    figures = [o for kind in ("display_data", "execute_result") for o in _outputs(nb, kind)
               if "image/png" in o.data]
    assert len(figures) >= 3, f"{path.name} drew {len(figures)} figures"
    if path.name.startswith("02_"):  # MLflow runs went to the store of RECSYS_DATA_DIR
        assert (tmp_path / "data" / "mlflow.db").is_file()
    print(f"{path.name}: {seconds:.0f}s")


@pytest.mark.slow
def test_exploration_skips_online_retail_with_a_message_when_it_is_missing(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("RECSYS_SHARED_DATA", str(tmp_path / "absent"))
    nb, _ = runner.execute(runner.NOTEBOOKS[0], timeout=600)
    printed = "".join(o.text for o in _outputs(nb, "stream") if o.name == "stdout")
    assert f"Online Retail not found at {tmp_path / 'absent'}" in printed
    cleaned = printed.splitlines()  # the cleaning reports are headed by the dataset name
    assert "completejourney" in cleaned and "online_retail" not in cleaned
