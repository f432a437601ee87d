"""Child processes that run mattecli import the package under test (issue 24 item 7): with
MATTE_REQUIRE_INSTALLED they used to get PYTHONPATH at the source tree, and so tested the checkout, not the
wheel. Here a copy of the package stands in for the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import SOURCE_TREE

PROBE = (
    "import sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "from conftest import child_env\n"
    "import subprocess\n"
    "code = 'import mattecli; print(mattecli.__file__)'\n"
    "out = subprocess.run([sys.executable, '-c', code], env=child_env(), cwd=sys.argv[2],\n"
    "                     capture_output=True, text=True, check=True)\n"
    "import mattecli\n"
    "print(mattecli.__file__)\n"
    "print(out.stdout.strip())\n"
)


def test_a_child_imports_the_installed_package_not_the_checkout(tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(SOURCE_TREE / "mattecli", site / "mattecli", ignore=shutil.ignore_patterns("__pycache__"))
    # As CI runs the suite against a wheel: the installed package first, the checkout also on the path.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(SOURCE_TREE)]),
        "MATTE_REQUIRE_INSTALLED": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(SOURCE_TREE / "tests"), str(tmp_path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    parent, child = out.stdout.splitlines()
    assert parent == str(site / "mattecli" / "__init__.py")
    assert child == parent


def test_from_the_source_tree_a_child_imports_the_source_tree(tmp_path: Path) -> None:
    from conftest import child_env

    import mattecli

    code = "import mattecli; print(mattecli.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == mattecli.__file__
