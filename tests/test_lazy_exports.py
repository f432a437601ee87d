"""mattecli.lazy_exports: the one PEP 562 loader behind mattecli, mattecli.image, mattecli.video and
mattecli.serve: importing a package loads nothing heavy, and every name it lists resolves on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

PACKAGES = ["mattecli", "mattecli.image", "mattecli.video", "mattecli.serve"]


def test_importing_the_packages_loads_nothing_heavy() -> None:
    code = (
        f"import sys, importlib; [importlib.import_module(p) for p in {PACKAGES!r}]; "
        "print(sorted(m for m in ('numpy', 'torch', 'cv2', 'PIL', 'starlette') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_listed_name_resolves_and_is_kept(package: str) -> None:
    import importlib

    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        assert vars(module)[name] is value  # kept: the next use is a plain attribute
        assert name in dir(module)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nope'"):
        module.nope  # noqa: B018
