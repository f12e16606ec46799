"""pytest fixtures for labs (registered suite-wide by tests/conftest.py).

``lab_factory`` gives a test a callable that starts a fresh lab and guarantees its
teardown at the end of the test, passed, failed or interrupted::

    def test_ping(lab_factory):
        lab = lab_factory("basic.toml")          # a bare name means the repo's netns/
        lab.node("sender").run(["ping", "-c1", "-W1", "192.0.2.2"], check=True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mrouter.lab.lab import Lab

LabFactory = Callable[..., Lab]


@pytest.fixture
def lab_factory() -> Iterator[LabFactory]:
    """A callable ``(topology, name=None) -> Lab``: each call starts a new lab."""
    labs: list[Lab] = []

    def make(topology: str | Path, name: str | None = None) -> Lab:
        lab = Lab.from_file(topology, name=name)
        labs.append(lab)
        return lab.start()

    try:
        yield make
    finally:
        errors: list[BaseException] = []
        for lab in reversed(labs):
            try:
                lab.teardown()
            except Exception as exc:  # tear down the others all the same
                errors.append(exc)
        if errors:
            raise errors[0]
