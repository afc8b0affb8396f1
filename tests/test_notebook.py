"""The example notebook runs top to bottom on the quick profile, so it never rots."""

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "attack_and_repair.ipynb"


@pytest.mark.slow
def test_attack_and_repair_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("OSRL_UNLEARN_NOTEBOOK_PROFILE", "quick")
    monkeypatch.setenv("OSRL_UNLEARN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OSRL_UNLEARN_NOTEBOOK_OUT", str(tmp_path / "out"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    outputs = "".join(
        out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", [])
    )
    assert "transitions injected" in outputs and "safe-rule: 10 steps" in outputs
    images = [out for cell in notebook.cells for out in cell.get("outputs", [])
              if "image/png" in out.get("data", {})]  # fmt: skip
    assert len(images) >= 3  # the spread, the policies and the unlearning curves
    assert (tmp_path / "out" / "policies.png").is_file()
