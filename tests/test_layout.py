"""The repository's layout: the wheel holds the package and nothing else, and the tests run the installed package."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import pytest

import lightning_mix

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lightning_mix"
# What a checkout holds that never belongs in a source copy: environments, caches, build outputs, the site.
LOCAL = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".nox",
    "mutants",
    "*.egg-info",
    "build",
    "dist",
    "site",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "outputs",
)


def test_the_tests_import_the_installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Path(lightning_mix.__file__).resolve() == PACKAGE / "__init__.py"
    # Away from the checkout, only the install can provide the package: it must be this checkout's, editable.
    monkeypatch.delenv("PYTHONPATH", raising=False)
    probe = "import json, importlib.util as u, importlib.metadata as m; d = m.distribution('lightning-mix'); "
    probe += "print(json.dumps([u.find_spec('lightning_mix').origin, d.version, d.read_text('direct_url.json')]))"
    found = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    path, version, direct_url = json.loads(found.stdout)
    assert Path(path).resolve() == PACKAGE / "__init__.py"
    assert version == lightning_mix.__version__
    direct_url = json.loads(direct_url or "{}")
    assert direct_url.get("dir_info", {}).get("editable"), "install the checkout editable: pip install -e ."
    assert Path(unquote(urlparse(direct_url["url"]).path)).resolve() == ROOT


@pytest.mark.slow
def test_the_wheel_holds_the_package_and_nothing_else(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=LOCAL)  # tests/, bench/, examples/ and docs/ are there to be left out
    assert {"tests", "bench", "examples", "docs"} <= {path.name for path in source.iterdir()}
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    subprocess.run([*command, "--wheel-dir", str(tmp_path / "wheel"), str(source)], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "wheel").glob("lightning_mix-*.whl")
    names = {PurePosixPath(name) for name in zipfile.ZipFile(wheel).namelist()}

    metadata = {name for name in names if name.parts[0].endswith(".dist-info")}
    assert {name.parts[0] for name in metadata} == {f"lightning_mix-{lightning_mix.__version__}.dist-info"}
    shipped = names - metadata
    expected = {
        PurePosixPath(path.relative_to(ROOT).as_posix())
        for path in PACKAGE.rglob("*")
        if path.is_file() and (path.suffix == ".py" or path.name == "py.typed")
    }
    assert PurePosixPath("lightning_mix/py.typed") in expected
    assert shipped == expected  # every module and py.typed, and nothing else of the repository
