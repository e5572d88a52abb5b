"""Packaging promises: typed package, torch pin, the README's set-up commands and CI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def setup_commands() -> list[str]:
    """Command lines of the README's first ```bash block."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```bash\n(.*?)```", readme, flags=re.S)
    assert match, "README.md has no ```bash block"
    lines = [line.strip() for line in match.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_py_typed_ships_with_the_package():
    assert (ROOT / "cec" / "py.typed").is_file()
    assert "py.typed" in pyproject()["tool"]["setuptools"]["package-data"]["cec"]


def test_py_typed_is_in_the_built_wheel(tmp_path):
    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in ("cec", "cec_distill"):
        if (ROOT / pkg).is_dir():
            shutil.copytree(ROOT / pkg, src / pkg, ignore=ignore)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("cec-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "cec/py.typed" in names and "cec/scorer.py" in names


def test_torch_requirement_admits_the_pinned_cpu_build():
    reqs = [Requirement(r) for r in pyproject()["project"]["dependencies"]]
    (torch,) = [r for r in reqs if r.name == "torch"]
    assert torch.specifier.contains(Version("2.13.0"))
    pins = re.findall(r"torch==([\w.+]+)", " ".join(setup_commands()))
    assert pins and all(torch.specifier.contains(Version(p)) for p in pins)


def test_readme_has_exactly_two_setup_commands():
    commands = setup_commands()
    assert len(commands) == 2, commands
    assert commands[0].startswith("pip install") and commands[1].startswith("pip install")


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    second = setup_commands()[1]
    assert second in [line.strip() for line in ci.splitlines()]


def test_the_fast_start_is_in_the_base_install_and_the_onnx_extra_still_resolves():
    """`pip install torch==2.13.0 .` gets ONNX Runtime (the fast start); `.[onnx]` still works."""
    project = pyproject()["project"]
    base = {Requirement(r).name for r in project["dependencies"]}
    assert {"onnxruntime", "onnx"} <= base
    assert {Requirement(r).name for r in project["optional-dependencies"]["onnx"]} == {
        "onnxruntime",
        "onnx",
    }
