"""Userspace multicast data plane (``mrouter run --dataplane user``).

:mod:`mrouter.dataplane.forward` is the pure decision and header rewrite;
:mod:`mrouter.dataplane.user` the packet-socket shell the daemon plugs into its loop.
"""

from mrouter.dataplane.forward import Decision, DropReason, decide, decrement_ttl
from mrouter.dataplane.user import (
    DataplaneError,
    DataplaneInterface,
    SendWith,
    UserDataplane,
)

__all__ = ["DataplaneError", "DataplaneInterface", "Decision", "DropReason", "SendWith",
           "UserDataplane", "decide", "decrement_ttl"]
