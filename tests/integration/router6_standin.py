"""A stand-in IPv6 multicast router for the explain tests: one process that holds an
IPv6 multicast routing table (:class:`mrouter.kernel.mroute6.Mroute6Socket`) with the
MIFs and MFC entries given on its command line, and nothing else (no MLD, no upcall
answers), until it is terminated. Run in a lab node by :func:`helpers.router6`::

    python router6_standin.py [--table N] --mif up0 --mif dn0[:THRESHOLD]
                              [--route SOURCE,GROUP,IIF,OIF+OIF...]
                              [--socket PATH [--member IFACE,GROUP]...]

With ``--socket`` it also answers ``show interfaces`` and ``show groups`` on a control
socket as a dual-stack daemon would (rows with ``family`` "ipv6"; each ``--member`` an
EXCLUDE {} listener row), so that explain treats the table as the daemon's.

A MIF's THRESHOLD goes into ``struct mif6ctl`` as asked (the binding accepts only 0 or
1, so a larger one is set with MRT6_ADD_MIF directly): ip6mr stores it and, as the
test shows, never compares it. It prints ``ready`` once the table is set up.
"""

from __future__ import annotations

import argparse
import select
import signal
import socket
import sys
from collections.abc import Mapping
from ipaddress import IPv6Address
from types import FrameType
from typing import Any

from mrouter.kernel.mroute6 import MIF6CTL, Mroute6Socket, Mrt6Option
from mrouter.router.control import ControlServer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", type=int)
    parser.add_argument("--mif", action="append", default=[])
    parser.add_argument("--route", action="append", default=[])
    parser.add_argument("--socket")
    parser.add_argument("--member", action="append", default=[])
    args = parser.parse_args()
    mrt = Mroute6Socket(table=args.table)
    mifs: dict[str, int] = {}
    for n, spec in enumerate(args.mif):
        name, _, threshold = spec.partition(":")
        mifs[name] = n
        if threshold and int(threshold) > 1:
            mrt.sock.setsockopt(socket.IPPROTO_IPV6, Mrt6Option.ADD_MIF, MIF6CTL.pack(
                n, 0, int(threshold), socket.if_nametoindex(name), 0))
        else:
            mrt.add_vif(n, socket.if_nametoindex(name))
    for spec in args.route:
        source, group, iif, oifs = spec.split(",")
        mrt.add_mfc(IPv6Address(source), IPv6Address(group), mifs[iif],
                    {mifs[o]: 1 for o in oifs.split("+") if o})

    def stop(signum: int, frame: FrameType | None) -> None:
        mrt.close()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    if args.socket is None:
        print("ready", flush=True)
        while True:
            signal.pause()
    interfaces = [{"name": name, "ifindex": socket.if_nametoindex(name), "active": True,
                   "querier": True, "family": "ipv6"} for name in mifs]
    groups = [{"iface": iface, "group": str(IPv6Address(group)), "filter_mode": "EXCLUDE",
               "sources": [], "family": "ipv6"}
              for iface, group in (m.split(",") for m in args.member)]

    def show(request: Mapping[str, Any]) -> Any:
        return {"interfaces": interfaces, "groups": groups}[request["what"]]

    server = ControlServer(args.socket, {"show": show})
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select(server.sockets(), [], [], 1.0)
        for sock in ready:
            server.ready(sock)
        server.service()


if __name__ == "__main__":
    sys.exit(main())
