"""Sysctls of the calling thread's network namespace, read and written through /proc/sys.

Theory of operation: a key is written as sysctl(8) writes it, dotted
(``net.ipv4.conf.all.rp_filter``), and is the file ``/proc/sys/net/ipv4/conf/all/rp_filter``.
A name that itself holds a dot (a VLAN interface ``eth0.100``) is written with a slash in
the key, as sysctl(8) does (``net.ipv4.conf.eth0/100.rp_filter``); :func:`conf_key` builds
such keys. ``/proc/sys/net`` shows the network namespace of the thread that opens the file,
so a thread that entered a lab node's namespace reads and sets that node's sysctls.

The one place that turns keys into paths and failures into messages: the multicast socket
shell reads the limits it quotes in errors, ``mrouter explain`` reads rp_filter and
mc_forwarding, the lab sets what its topology asks for.
"""

from __future__ import annotations

from pathlib import Path

from mrouter.errors import MrouterError

PROC_SYS = Path("/proc/sys")


def path(key: str) -> Path:
    """The /proc/sys file of ``key`` (dots separate, a slash stands for a dot in a name)."""
    return PROC_SYS.joinpath(*(part.replace("/", ".") for part in key.split(".")))


def conf_key(iface: str, name: str) -> str:
    """The key of an interface's IPv4 setting: ``conf_key("eth0", "rp_filter")`` is
    ``net.ipv4.conf.eth0.rp_filter`` (``all`` and ``default`` are names too)."""
    return f"net.ipv4.conf.{iface.replace('.', '/')}.{name}"


def read(key: str, *, error: type[MrouterError] = MrouterError) -> str:
    """The value of ``key`` as text (trailing newline gone); raises ``error`` with a clear
    message when the key does not exist here or cannot be read."""
    try:
        return path(key).read_text().strip()
    except FileNotFoundError:
        raise error(f"sysctl {key} does not exist in a network namespace") from None
    except OSError as exc:
        raise error(f"cannot read sysctl {key}: {exc.strerror}") from None


def read_or(key: str, default: str) -> str:
    """The value of ``key`` as text, or ``default`` when it cannot be read."""
    try:
        return path(key).read_text().strip()
    except OSError:
        return default


def read_int(key: str, default: int) -> int:
    """The value of ``key`` as an integer, or ``default`` when it cannot be read or is not
    one."""
    try:
        return int(read_or(key, ""))
    except ValueError:
        return default


def write(key: str, value: str, *, error: type[MrouterError] = MrouterError,
          hint: str = "") -> None:
    """Set ``key`` to ``value``; raises ``error`` with a clear message when the key does not
    exist here (``hint`` then says what to check) or the kernel refuses the value."""
    try:
        path(key).write_text(value)
    except FileNotFoundError:
        raise error(f"sysctl {key} does not exist in a network namespace"
                    + (f"; {hint}" if hint else "")) from None
    except OSError as exc:
        raise error(f"cannot set sysctl {key}={value}: {exc.strerror}") from None
