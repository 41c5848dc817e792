"""Griffe extension: render the docstrings' Napoleon (reST-flavoured Google) touches as Markdown.

The docstrings are Google style with a few reST habits that Sphinx's Napoleon reads and that pytest's doctests
ignore. Read as Markdown they would show up raw, so before the docstrings are parsed:

- an ``Example:`` section is retitled ``Examples:``, so that its ``>>>`` lines render as Python console code
  (griffe takes ``Example:`` for an admonition, whose ``>>>`` lines Markdown reads as nested quotes);
- a role such as ``:class:`~lightning_mix.MixCallback``` becomes the code span ``MixCallback`` (the full
  target without ``~``);
- a line ending in ``::`` (reST's "a literal block follows") ends in ``:``; the indented block after it is code
  in Markdown too.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?[a-z]+:`(?P<short>~)?(?P<target>[^`]+)`")
_LITERAL_BLOCK = re.compile(r"^(?P<line>(?![ \t]*(?:>>>|\.\.\.)).*\S)::[ \t]*$", re.MULTILINE)


def _role(match: re.Match[str]) -> str:
    target = match["target"]
    return f"`{target.rsplit('.', 1)[-1] if match['short'] else target}`"


def markdown(docstring: str) -> str:
    r"""The docstring with its Napoleon touches made Markdown.

    Example:
        >>> markdown("See :class:`~a.B` and :func:`c.d`::\n\n    x = 1\n\nExample:\n    >>> 1\n    1")
        'See `B` and `c.d`:\n\n    x = 1\n\nExamples:\n    >>> 1\n    1'
    """
    docstring = _EXAMPLE.sub(r"\g<indent>Examples:", docstring)
    docstring = _ROLE.sub(_role, docstring)
    return _LITERAL_BLOCK.sub(r"\g<line>:", docstring)


class NapoleonAsMarkdown(griffe.Extension):
    """Rewrite every docstring with :func:`markdown` before it is parsed."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite one object's docstring."""
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
