"""Execute every example notebook top to bottom in a real Jupyter kernel, at the small size."""

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.ipynb"))


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


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs(path: Path, kernel_of_this_python: str, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), "commit notebooks stripped"
    notebook.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    client = NotebookClient(
        notebook, timeout=300, kernel_name=kernel_of_this_python, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    # the last line printed: output of earlier cells can still arrive late in this one (seen with lightning 2.5)
    printed = "".join(out.get("text", "") for out in notebook.cells[-1].outputs if out.get("name") == "stdout")
    assert printed.strip().splitlines()[-1] == sys.executable  # the kernel ran in this environment
