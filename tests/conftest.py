"""Suite-wide pytest configuration.

The lab fixtures (fresh network-namespace labs, always torn down) come from
``mrouter.lab.fixtures``; see netns/README.md.
"""

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

pytest_plugins = ("mrouter.lab.fixtures",)


@pytest.fixture
def closing() -> Iterator[ExitStack]:
    """An ExitStack closed after the test: the sockets a test opens, closed in any case."""
    with ExitStack() as stack:
        yield stack
