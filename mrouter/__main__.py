"""``python -m mrouter`` is the same as the ``mrouter`` command."""

from mrouter.cli.main import main

raise SystemExit(main())
