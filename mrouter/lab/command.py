"""Commands run in lab nodes find the ``mrouter`` the user ran.

A virtualenv's ``mrouter`` is on PATH only while the virtualenv is activated, and sudo
resets PATH: ``mrouter lab exec LAB NODE -- mrouter ...`` (or a topology's
``commands = ["mrouter run ..."]``) would then find no mrouter, or another one. So a
leading ``mrouter`` becomes this interpreter's ``-m mrouter``, and this interpreter's
bin directory (where a virtualenv keeps the ``mrouter`` script) comes first on the
child's PATH, so ``sh -c 'mrouter ...'`` finds the same one too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence


def same_mrouter(argv: Sequence[str], env: Mapping[str, str] | None = None,
                 ) -> tuple[list[str], dict[str, str]]:
    """``argv`` and the environment (``env``, default this process's) to run it with."""
    child = dict(os.environ if env is None else env)
    bin_dir = os.path.dirname(sys.executable)
    path = [p for p in child.get("PATH", os.defpath).split(os.pathsep) if p and p != bin_dir]
    child["PATH"] = os.pathsep.join([bin_dir, *path])
    cmd = list(argv)
    if cmd and cmd[0] == "mrouter":
        cmd = [sys.executable, "-m", "mrouter", *cmd[1:]]
    return cmd, child
