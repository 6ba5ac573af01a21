"""What PyPI shows: the metadata a wheel carries, and a README whose links work away from the repository."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/ibepsk/ibepsk"
#: A link in markdown ([text](target)), a reference definition ([label]: target) or HTML (href=/src=).
LINK_TARGETS = re.compile(r"\]\(([^)\s]+)|^\s*\[[^\]]+\]:\s*(\S+)|(?:href|src)=\"([^\"]+)\"", re.MULTILINE)


def test_pyproject_uses_an_spdx_license_and_says_where_the_project_lives() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["license"] == "Apache-2.0"  # PEP 639; the {text = ...} table is deprecated
    assert project["license-files"] == ["LICENSE"]
    assert not [c for c in project["classifiers"] if c.startswith("License ::")], "setuptools refuses both"
    assert project["keywords"]
    assert project["urls"] == {
        "Homepage": REPOSITORY,
        "Source": REPOSITORY,
        "Issues": f"{REPOSITORY}/issues",
        "Documentation": f"{REPOSITORY}/tree/main/docs",
    }
    assert any(requirement.startswith("setuptools>=77") for requirement in pyproject["build-system"]["requires"])


def _setuptools_version() -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version("setuptools"))[:2])


@pytest.mark.skipif(_setuptools_version() < (77,), reason="PEP 639 metadata needs setuptools >= 77")
def test_the_wheel_carries_the_metadata(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "ibepsk", source / "ibepsk", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=source, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("ibepsk-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode("utf-8"))
        assert any(name.endswith(".dist-info/licenses/LICENSE") for name in archive.namelist())
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert f"Source, {REPOSITORY}" in metadata.get_all("Project-URL")
    assert "tiigertls" in metadata["Keywords"]
    assert "Topic :: Security :: Cryptography" in metadata.get_all("Classifier")
    assert "License ::" not in str(metadata.get_all("Classifier"))


def test_readme_links_are_absolute() -> None:
    # The README is the PyPI page, where a link relative to the repository leads nowhere.
    targets = [next(filter(None, match)) for match in LINK_TARGETS.findall((ROOT / "README.md").read_text())]
    assert targets, "the pattern finds the README's links"
    relative = [target for target in targets if not target.startswith(("https://", "http://", "#"))]
    assert relative == []
    for target in targets:
        if target.startswith(REPOSITORY + "/blob/main/"):
            assert (ROOT / target.removeprefix(REPOSITORY + "/blob/main/")).exists(), target
