"""Execute the example notebooks at full size and store them with their outputs (``make notebooks``).

Readers see the plots and numbers on GitHub and on the docs site without running anything. Each notebook runs
top to bottom in a fresh kernel of this Python, one at a time, with ``OMP_NUM_THREADS=1`` so that the numbers
are reproducible on one machine. The stored outputs keep what a reader needs (printed results, figures,
returned values) and drop what only makes noise: everything a cell writes to stderr (Lightning's start-up
messages, warnings), progress bars, what the ``rich`` console renders into the notebook when it is installed
(Lightning's rich progress bar and model summary), and the execution timings.

    python examples/execute_notebooks.py                       # every notebook in examples/
    python examples/execute_notebooks.py examples/02_comparison.ipynb

The test suite runs the notebooks again, shrunk by ``LIGHTNING_MIX_SMALL=1``, from their code alone
(``tests/test_notebooks.py``), and checks that the stored outputs are clean.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent
KERNEL = "python3"
ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal control sequences (cursor moves, colours)
RICH = '<pre style="white-space:pre;overflow-x:auto;line-height:normal;font-family:Menlo'  # rich's Jupyter output
PROGRESS = re.compile(r"\d+%\|.*\|.*\]|\|\s*\d+/\?.*it/s\]")  # a tqdm bar: "40%|████  | 2/5 [..]", "| 0/? [..it/s]"


def printed(text: str) -> str:
    """What a terminal would finally show of ``text``, without progress-bar lines."""
    shown = []
    for line in text.split("\n"):
        final = ESCAPE.sub("", line).rsplit("\r", 1)[-1]
        erased = final != line and not final.strip()  # a line that a progress bar wrote and then blanked
        if not erased and not PROGRESS.search(final):
            shown.append(final)
    return "\n".join(shown)


def clean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop stderr, progress bars and per-cell metadata from an executed notebook, in place."""
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        outputs: list[nbformat.NotebookNode] = []
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr":
                continue
            if output.output_type == "display_data" and "".join(output.data.get("text/html", "")).startswith(RICH):
                continue
            if output.output_type == "stream" and outputs and outputs[-1].output_type == "stream":
                outputs[-1].text += output.text  # one stdout stream per run of prints, as a reader sees it
            else:
                outputs.append(output)
        for output in outputs:
            if output.output_type == "stream":
                output.text = printed(output.text).lstrip("\n")
        cell.outputs = [out for out in outputs if out.output_type != "stream" or out.text.strip()]
    notebook.metadata.pop("widgets", None)
    return notebook


def execute(path: Path, kernel_dir: Path) -> float:
    """Run one notebook at full size in a fresh kernel and write it back with its cleaned outputs."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    start = time.perf_counter()
    client = NotebookClient(
        notebook,
        timeout=3600,
        kernel_name=KERNEL,
        record_timing=False,
        resources={"metadata": {"path": tempfile.mkdtemp(prefix="notebook-")}},  # files a notebook writes
    )
    client.execute(env={**os.environ, "JUPYTER_PATH": str(kernel_dir)})
    nbformat.validate(notebook)
    nbformat.write(clean(notebook), path)
    return time.perf_counter() - start


def main() -> None:
    """Execute the notebooks named on the command line, or all of them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: examples/*.ipynb)")
    paths = parser.parse_args().notebooks or sorted(EXAMPLES.glob("*.ipynb"))
    os.environ.pop("LIGHTNING_MIX_SMALL", None)  # full size
    os.environ["OMP_NUM_THREADS"] = "1"
    with tempfile.TemporaryDirectory() as kernel_dir:
        # a "python3" kernel that starts this very interpreter, whatever kernels the machine has
        spec = Path(kernel_dir) / "kernels" / KERNEL
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
        os.environ["JUPYTER_PATH"] = kernel_dir
        for path in paths:
            print(f"{path.name}: ", end="", flush=True)
            print(f"{execute(path, Path(kernel_dir)):.0f} s", flush=True)


if __name__ == "__main__":
    main()
