"""Files that ship with mrouter: topologies, example configs, docs.

In the repository they are the top-level folders ``netns/``, ``examples/``, ``docs/`` and
``systemd/`` (the units);
a wheel installs them inside the package as ``mrouter/netns`` and so on (see setup.py).
:func:`folder` finds them in either place, so a command works the same from a checkout
(editable install) and from an installed wheel, from any directory.
"""

from __future__ import annotations

from pathlib import Path

from mrouter.errors import MrouterError

_PACKAGE = Path(__file__).resolve().parent

#: The shipped folders, by the name they have in the repository and in the package.
FOLDERS = ("netns", "examples", "docs", "systemd")


def folder(name: str) -> Path:
    """The shipped folder ``name`` (one of :data:`FOLDERS`)."""
    if name not in FOLDERS:
        raise ValueError(f"no shipped folder {name!r}")
    installed = _PACKAGE / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name  # a checkout: the repository's top-level folder


def example_config(name: str) -> str:
    """The text of the example config ``name`` (``router`` or ``proxy``)."""
    path = folder("examples") / f"{name}.toml"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(example_names()) or "none"
        raise MrouterError(f"no example config named {name!r} (known: {known})") from None


def example_names() -> list[str]:
    return sorted(p.stem for p in folder("examples").glob("*.toml"))


#: where the shipped units expect the ``mrouter`` command; ``mrouter config unit`` writes
#: the one that runs instead
UNIT_COMMAND = "/usr/local/bin/mrouter"


def unit(instance: bool, command: str = UNIT_COMMAND) -> str:
    """The text of ``mrouter.service``, or of ``mrouter@.service`` with ``instance``, its
    ``mrouter`` command being ``command``."""
    name = "mrouter@.service" if instance else "mrouter.service"
    text = (folder("systemd") / name).read_text(encoding="utf-8")
    return text.replace(UNIT_COMMAND, command)
