"""Griffe extension: read a Google ``Example:`` section as an examples section, as ``Examples:`` is.

The docstrings title their doctests ``Example:`` (Napoleon's spelling, which pytest's doctests do not care
about). Griffe would take that title for an admonition and render its ``>>>`` lines as nested quotes; read as
an examples section, they render as Python console code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Retitle ``Example:`` sections ``Examples:`` before the docstrings are parsed."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the section title of one object's docstring."""
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\g<indent>Examples:", obj.docstring.value)
