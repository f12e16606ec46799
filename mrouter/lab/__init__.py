"""Network-namespace labs built from topology files (see netns/README.md).

::

    from mrouter.lab import Lab
    with Lab.from_file("netns/basic.toml") as lab:
        lab.node("sender").run(["ping", "-c1", "192.0.2.2"], check=True)

Modules: :mod:`~mrouter.lab.topology` (the file format; pure),
:mod:`~mrouter.lab.netns` (named namespaces), :mod:`~mrouter.lab.build` (pyroute2 work),
:mod:`~mrouter.lab.state` (records of running labs, ``down``),
:mod:`~mrouter.lab.frr` (FRR daemons in nodes of kind "frr"),
:mod:`~mrouter.lab.lab` (:class:`Lab`, :class:`Node`), :mod:`~mrouter.lab.fixtures`
(the ``lab_factory`` pytest fixture).
"""

from mrouter.lab.lab import Lab, Node
from mrouter.lab.topology import Topology, load_topology, parse_topology

__all__ = ["Lab", "Node", "Topology", "load_topology", "parse_topology"]
