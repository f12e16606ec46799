"""Packaging beyond what pyproject.toml can say: the repository's top-level data folders.

The topologies (netns/), the example configs (examples/), the docs (docs/) and the systemd
units (systemd/) stay where a reader of the repository looks for them, and are installed
inside the package as mrouter/netns, mrouter/examples, mrouter/docs and mrouter/systemd,
where :mod:`mrouter.shipped` finds them (in a checkout it finds the top-level folders).
Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

DATA = {
    "mrouter.netns": ("netns", ["*.toml", "*.md"]),
    "mrouter.examples": ("examples", ["*.toml"]),
    "mrouter.docs": ("docs", ["*.md", "man/*"]),
    "mrouter.systemd": ("systemd", ["*.service"]),
}

# The man pages also go where man(1) looks next to an installed bin/ directory
# (<prefix>/share/man), so `man mrouter` works once the virtualenv's bin/ is on PATH.
MAN_PAGES = [("share/man/man8", ["docs/man/mrouter.8"]),
             ("share/man/man5", ["docs/man/mrouter.toml.5"])]

setup(
    data_files=MAN_PAGES,
    packages=[*find_packages(include=["mrouter", "mrouter.*"]), *DATA],
    package_dir={pkg: folder for pkg, (folder, _) in DATA.items()},
    package_data={pkg: globs for pkg, (_, globs) in DATA.items()},
)
