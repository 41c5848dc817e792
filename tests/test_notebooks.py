"""The example notebooks: committed executed and clean, and still running top to bottom in a real kernel.

They are stored with their full-size outputs (``make notebooks`` writes them), so a reader sees the plots on
GitHub and on the docs site; the suite runs them again from their code alone, at the small size.
"""

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.ipynb"))
IDS = [path.name for path in NOTEBOOKS]
NOISE = re.compile(r"\r|\x1b\[|it/s\]|\d+%\|")  # carriage returns, terminal escapes, progress bars


@pytest.fixture
def kernel_of_this_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``python3`` kernelspec that starts this very interpreter, found before any other on JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("LIGHTNING_MIX_SMALL", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # tiny models; pytest-xdist already keeps every core busy
    return "python3"


def test_there_are_notebooks() -> None:
    assert [path.name[:3] for path in NOTEBOOKS] == ["01_", "02_", "03_", "04_"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stored_executed_and_clean(path: Path) -> None:
    assert path.stat().st_size < 1_500_000, "outputs too large: fewer or smaller figures"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    # executed top to bottom in one kernel run, as `make notebooks` does
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), "run `make notebooks`"
    for cell in code:
        assert "execution" not in cell.metadata  # no timings: a re-run changes only what it computes
        for output in cell.outputs:
            assert output.output_type != "error", cell.source
            if output.output_type == "stream":
                assert output.name == "stdout"
                assert not NOISE.search(output.text), output.text
            if output.output_type == "display_data":  # figures only: no rich progress bars or summaries
                assert "image/png" in output.data, output.data.get("text/plain")
        if "plt." in cell.source or "plot_batch(" in cell.source:
            assert any("image/png" in output.get("data", {}) for output in cell.outputs), cell.source
    assert any(cell.outputs for cell in code)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path: Path, kernel_of_this_python: str, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None  # run from the code alone
    notebook.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    client = NotebookClient(
        notebook, timeout=300, kernel_name=kernel_of_this_python, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    # the last line printed: output of earlier cells can still arrive late in this one (seen with lightning 2.5)
    printed = "".join(out.get("text", "") for out in notebook.cells[-1].outputs if out.get("name") == "stdout")
    assert printed.strip().splitlines()[-1] == sys.executable  # the kernel ran in this environment
