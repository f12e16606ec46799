"""The ``mrouter`` command: argument parsing and output only, no protocol logic."""
