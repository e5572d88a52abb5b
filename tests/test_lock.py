"""The locked test environment (issue 23, cause 1): ``constraints-dev.txt`` against pyproject.

The tests run against one pinned set of packages (``pip install -c constraints-dev.txt
torch==2.13.0 ".[dev]"``, in ``.ci/run`` and the README's test command), so a new upstream
release cannot change what CI tests; ``pyproject.toml`` keeps ranges for users. These checks keep
the two from disagreeing: every requirement of the ``dev`` install (the base dependencies and
every extra it names, recursively) is pinned in the lock at a version inside pyproject's range;
the lock is closed under its packages' own requirements (read from the installed metadata); and
where ``.ci/run`` installed from the lock (``CEC_LOCKED=1``), what is installed is what is locked.
"""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints-dev.txt"


def _lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for n, line in enumerate(LOCK.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert m, f"constraints-dev.txt:{n}: not a plain `name==version` pin: {line!r}"
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"constraints-dev.txt:{n}: {name} is pinned twice"
        pins[name] = Version(m.group(2))
    return pins


def _dev_requirements() -> list[Requirement]:
    """Every requirement of ``pip install ".[dev]"`` that pyproject states (extras expanded)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    todo, seen = ["dev"], set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in extras[extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "cec":
                todo.extend(req.extras)
            else:
                reqs.append(req)
    return reqs


def _applies(req: Requirement, extra: str = "") -> bool:
    if req.marker is None:
        return True
    return req.marker.evaluate({**default_environment(), "extra": extra})


def test_every_dev_requirement_is_locked_inside_pyprojects_range():
    pins = _lock()
    problems = []
    for req in _dev_requirements():
        if not _applies(req):
            continue
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req} is not in constraints-dev.txt")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"constraints-dev.txt pins {name}=={pins[name]}, outside {req}")
    assert not problems, "\n".join(problems) + "\n(refresh with: bash .ci/refresh-lock)"


def test_the_lock_pins_the_build_backend_and_the_cpu_torch():
    pins = _lock()
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]
    for text in build["requires"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins and req.specifier.contains(pins[name]), text
    assert pins["torch"] == Version("2.13.0")  # the CPU build on local disk (README)


def test_the_lock_is_closed_under_its_packages_own_requirements():
    """Each locked package's requirements (its installed metadata) are locked, in range."""
    pins = _lock()
    problems = []
    for name, version in pins.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # not installed here (e.g. wheel): nothing to read
        if Version(dist.version).public != version.public:
            continue  # another environment than the locked one: the next test's business
        for text in dist.requires or []:
            req = Requirement(text)
            if not _applies(req):
                continue  # an extra of that package, or another platform
            dep = canonicalize_name(req.name)
            if dep not in pins:
                problems.append(f"{name} needs {req}, which is not locked")
            elif not req.specifier.contains(pins[dep], prereleases=True):
                problems.append(f"{name} needs {req}; the lock has {dep}=={pins[dep]}")
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(
    os.environ.get("CEC_LOCKED") != "1", reason="not installed from the lock (.ci/run sets it)"
)
def test_the_installed_environment_is_the_locked_one():
    pins = _lock()
    wrong = []
    for name, version in pins.items():
        try:
            have = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            if name not in ("wheel", "setuptools"):  # build-only pins
                wrong.append(f"{name}=={version} is not installed")
            continue
        if have.public != version.public:
            wrong.append(f"{name}: installed {have}, locked {version}")
    assert not wrong, "\n".join(wrong)
