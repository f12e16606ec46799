"""Packaging beyond what pyproject.toml can say: the repository's top-level data folders.

The topologies (netns/), the example configs (examples/) and the docs (docs/) stay where a
reader of the repository looks for them, and are installed inside the package as
mrouter/netns, mrouter/examples and mrouter/docs, where :mod:`mrouter.shipped` finds them
(in a checkout it finds the top-level folders). Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

DATA = {
    "mrouter.netns": ("netns", ["*.toml", "*.md"]),
    "mrouter.examples": ("examples", ["*.toml"]),
    "mrouter.docs": ("docs", ["*.md", "man/*"]),
}

setup(
    packages=[*find_packages(include=["mrouter", "mrouter.*"]), *DATA],
    package_dir={pkg: folder for pkg, (folder, _) in DATA.items()},
    package_data={pkg: globs for pkg, (_, globs) in DATA.items()},
)
