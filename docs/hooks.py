"""MkDocs hooks: put the example notebooks and the API reference pages into the site.

- Every ``examples/*.ipynb`` becomes the page ``examples/<name>.ipynb``, which mkdocs-jupyter renders with its
  stored outputs (nothing is executed at build time).
- Every nav entry ``api/<module>.md`` without a file of its own becomes a page holding
  ``::: lightning_mix.<module>``, so documenting a new module is one nav line in ``mkdocs.yml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]


def _nav_paths(nav: Any) -> list[str]:
    """Every page path named in the ``nav`` setting, in order."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [path for value in nav.values() for path in _nav_paths(value)]
    if isinstance(nav, list):
        return [path for item in nav for path in _nav_paths(item)]
    return []


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns .ipynb files into pages
def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the notebooks and the generated API pages to the site's files."""
    for notebook in sorted((ROOT / "examples").glob("*.ipynb")):
        # A real file under the repository root (not a generated one): mkdocs-jupyter reads it from there.
        files.append(File(f"examples/{notebook.name}", str(ROOT), config.site_dir, config.use_directory_urls))
    for path in _nav_paths(config.nav):
        if path.startswith("api/") and path.endswith(".md") and files.get_file_from_path(path) is None:
            module = "lightning_mix." + path.removeprefix("api/").removesuffix(".md").replace("/", ".")
            files.append(File.generated(config, path, content=f"# `{module}`\n\n::: {module}\n"))
    return files
