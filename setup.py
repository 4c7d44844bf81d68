"""The package list, which pyproject.toml cannot state alone: every package found under birefnet/,
pipeline/ and workers/, plus the top-level configs/ folder installed as ``pipeline/presets`` so that a
wheel carries the presets (``pipeline.settings.presets`` looks there first, then in configs/).
Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["birefnet*", "pipeline*", "workers*"]), "pipeline.presets"],
    package_dir={"pipeline.presets": "configs"},
)
