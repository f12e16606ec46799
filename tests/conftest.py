"""Suite-wide pytest configuration.

The lab fixtures (fresh network-namespace labs, always torn down) come from
``mrouter.lab.fixtures``; see netns/README.md.
"""

pytest_plugins = ("mrouter.lab.fixtures",)
