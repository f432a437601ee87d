"""Package discovery, the one part of the build that pyproject.toml cannot say by itself.

Every package under ``mattecli/`` is found automatically, so a new sub-package can never be left out of the
wheel again (0.1.0 shipped without ``mattecli.video``). The bundled weights live in the top-level
``weights/`` folder and install as ``mattecli.bundled``; ``weights/recipe`` (training scripts) stays out.
Everything else about the build is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["mattecli", "mattecli.*"]), "mattecli.bundled"],
    package_dir={"mattecli.bundled": "weights"},
)
