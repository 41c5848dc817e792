"""The test suite against the oldest dependency versions the project claims, and against the current pins.

Run by hand (``make floors``, or ``nox -s oldest`` / ``nox -s current``), not by CI: the oldest session downloads
torch and its CUDA libraries from PyPI (several GB the first time; the environment is reused afterwards).
Python 3.10 must be findable, e.g. through pyenv (``make floors`` puts ``~/.pyenv/versions/*/bin`` on the
``PATH``). The versions below are the floors of ``pyproject.toml``; raise them together.
"""

from __future__ import annotations

import re

import nox

nox.options.sessions = ["oldest", "current"]
nox.options.reuse_existing_virtualenvs = True

# The floors of pyproject.toml (dependencies and the examples/cli extras), with the Python they run on.
OLDEST_PYTHON = "3.10"
OLDEST = [
    "torch==2.14.1",
    "torchvision==0.29.1",
    "lightning==2.5.0",
    "pytorch-lightning==2.5.0",
    "torchmetrics==1.4.0",
    "jsonargparse[signatures]==4.27.7",
]
# What the Makefile installs and the project is developed with.
CURRENT_PYTHON = "3.11"
CURRENT = ["torch==2.14.1", "torchvision==0.29.1"]

PYTEST = ["-q"]  # add `-- -n 2` (pytest-xdist) to spread the suite over two processes
ENV = {"OMP_NUM_THREADS": "1"}


def _run_suite(session: nox.Session, pins: list[str]) -> None:
    # Pins as constraints: pip may not move them while it resolves the test extra.
    constraints = session.create_tmp() + "/constraints.txt"
    with open(constraints, "w") as file:
        file.write("\n".join(re.sub(r"\[.*\]", "", pin) for pin in pins) + "\n")  # constraints take no extras
    session.install(*pins)
    session.install("-e", ".[test]", "-c", constraints)
    session.run("python", "-c", _VERSIONS)
    session.run("python", "-m", "pytest", *PYTEST, *session.posargs, env=ENV)


_VERSIONS = (
    "import sys, importlib.metadata as m; print('Python ' + sys.version.split()[0], *("
    "f'{p} {m.version(p)}' for p in ('torch', 'lightning', 'pytorch-lightning', 'torchmetrics', 'jsonargparse', "
    "'numpy')), sep=' | ')"
)


@nox.session(python=OLDEST_PYTHON)
def oldest(session: nox.Session) -> None:
    """The suite with every runtime dependency at the lowest version pyproject.toml allows."""
    _run_suite(session, OLDEST)


@nox.session(python=CURRENT_PYTHON)
def current(session: nox.Session) -> None:
    """The suite with the pins the Makefile installs."""
    _run_suite(session, CURRENT)
