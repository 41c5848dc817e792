"""Every ```python block of the README runs, in order, in one namespace (later blocks may use earlier ones).

A block preceded by the line ``<!-- skip -->`` is not run; use it sparingly.
"""

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(?P<skip><!-- skip -->\n)?```python\n(?P<code>.*?)```", re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line, code)`` of every runnable python block."""
    return [
        (text.count("\n", 0, match.start("code")) + 1, match["code"])
        for match in BLOCK.finditer(text)
        if not match["skip"]
    ]


def test_block_extraction() -> None:
    text = "a\n```python\nx = 1\n```\n<!-- skip -->\n```python\nboom()\n```\n```text\nno\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n")]


@pytest.mark.filterwarnings("ignore:.*does not have many workers.*", "ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:.*args parameter is intended to run from within Python.*")
def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything a block writes lands here
    monkeypatch.setattr("sys.argv", ["readme"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models, and pytest-xdist already keeps every core busy
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    namespace: dict[str, object] = {"__name__": "__readme__"}
    try:
        for line, code in blocks:
            try:
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
            except Exception as error:
                raise AssertionError(f"the python block at README.md line {line} failed: {error!r}") from error
    finally:
        torch.set_num_threads(threads)
