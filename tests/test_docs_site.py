"""The documentation site's configuration: its API pages, its notebooks, and the docstring rendering.

`make docs` (part of `make test`) builds the site with ``--strict``; these tests check what a build cannot see:
that no public module or notebook is left out of the navigation.
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def load(name: str) -> ModuleType:
    """A module of ``docs/`` (the site's hooks and griffe extension), loaded from its file."""
    pytest.importorskip("mkdocs" if name == "hooks" else "griffe")
    spec = importlib.util.spec_from_file_location(f"docs_{name}", ROOT / "docs" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nav_paths() -> list[str]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    return load("hooks")._nav_paths(config["nav"])


def test_every_public_module_has_an_api_page() -> None:
    package = ROOT / "lightning_mix"
    public = {path.stem for path in package.glob("*.py") if not path.name.startswith("_")}
    public |= {path.parent.name for path in package.glob("*/__init__.py") if not path.parent.name.startswith("_")}
    pages = {path.removeprefix("api/").removesuffix(".md") for path in nav_paths() if path.startswith("api/")}
    assert pages == public  # a new module needs its one line under "API reference" in mkdocs.yml


def test_every_notebook_is_in_the_nav() -> None:
    notebooks = {f"examples/{path.name}" for path in (ROOT / "examples").glob("*.ipynb")}
    assert notebooks == {path for path in nav_paths() if path.endswith(".ipynb")}


def test_every_guide_is_in_the_nav() -> None:
    guides = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert guides == {path for path in nav_paths() if path.endswith(".md") and "/" not in path}


def test_nav_paths_walks_sections_in_order() -> None:
    nav = ["index.md", {"Guides": [{"A": "a.md"}, "b.md"]}, {"API": [{"x": "api/x.md"}]}]
    assert load("hooks")._nav_paths(nav) == ["index.md", "a.md", "b.md", "api/x.md"]


@pytest.mark.parametrize(
    ("docstring", "markdown"),
    [
        ("Uses :class:`~lightning_mix.MixCallback`.", "Uses `MixCallback`."),
        ("See :func:`mix_` and :py:meth:`a.b.c`.", "See `mix_` and `a.b.c`."),
        ("Run it::\n\n    make demo", "Run it:\n\n    make demo"),
        ("Example:\n    >>> 1\n    1", "Examples:\n    >>> 1\n    1"),
        ("Args:\n    x: the input.\n\nExample:\n    >>> x[::2]  # slicing::\n", None),
        ("An ``Example:`` in prose and a C++ name ``std::vector`` stay.", None),
    ],
)
def test_napoleon_touches_become_markdown(docstring: str, markdown: str | None) -> None:
    expected = docstring.replace("\nExample:", "\nExamples:") if markdown is None else markdown
    assert load("griffe_rest").markdown(docstring) == expected
