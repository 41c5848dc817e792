"""Every ```python block of the README and of each docs guide runs, in order, in one namespace per page.

Later blocks of a page may use names defined by earlier ones. A block preceded by the line ``<!-- skip -->`` is
not run; use it sparingly.
"""

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDES = sorted((ROOT / "docs").glob("*.md"))
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


def test_the_readme_shows_runnable_code() -> None:
    assert len(python_blocks(README.read_text(encoding="utf-8"))) >= 5


@pytest.mark.filterwarnings("ignore:.*does not have many workers.*", "ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:.*args parameter is intended to run from within Python.*")
@pytest.mark.parametrize("page", [README, *GUIDES], ids=lambda page: str(page.relative_to(ROOT)))
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything a block writes lands here
    monkeypatch.setattr("sys.argv", ["readme"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models, and pytest-xdist already keeps every core busy
    name = str(page.relative_to(ROOT))
    namespace: dict[str, object] = {"__name__": "__readme__"}
    try:
        for line, code in python_blocks(page.read_text(encoding="utf-8")):
            try:
                exec(compile(code, f"{name}:{line}", "exec"), namespace)
            except Exception as error:
                raise AssertionError(f"the python block at {name} line {line} failed: {error!r}") from error
    finally:
        torch.set_num_threads(threads)
