"""What a system service does with the system: systemd's notify protocol, a PID file,
and dropping root while keeping the two capabilities a multicast router needs.

- :func:`notify` sends one sd_notify(3) message (``READY=1``, ``RELOADING=1``,
  ``STOPPING=1``, ``STATUS=...``) as a datagram to the Unix socket named by
  ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace), as systemd
  expects from a ``Type=notify`` unit; without the variable it does nothing.
- :class:`PidFile` writes the daemon's PID and removes the file on close, if it still
  holds that PID.
- :func:`drop_privileges` switches to another user after start-up (the MRT_INIT socket,
  the VIFs and the listening sockets are open by then) and keeps only CAP_NET_ADMIN (the
  MRT_* socket options: routes and VIFs) and CAP_NET_RAW (the raw IGMP socket), as
  capabilities(7) describes: PR_SET_KEEPCAPS across setuid(), then capset(2) with the
  two in the permitted and effective sets, every other capability out of the bounding
  set, and PR_SET_NO_NEW_PRIVS. No library: prctl(2) and capset(2) through ctypes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import pwd
import socket
from pathlib import Path

from mrouter.errors import MrouterError

# linux/prctl.h and linux/capability.h
PR_CAPBSET_DROP = 24
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
KEPT = (CAP_NET_ADMIN, CAP_NET_RAW)


class ServiceError(MrouterError):
    """A PID file, user or capability step of a service's start-up failed."""


def notify(message: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``message`` to ``$NOTIFY_SOCKET``; False when there is none (not under a
    ``Type=notify`` unit). A socket that is gone is not an error: the service goes on."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message.encode(), address)
        except OSError:
            return False
    return True


class PidFile:
    """``path`` holds this process's PID until :meth:`close`."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.pid = os.getpid()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            self.path.write_text(f"{self.pid}\n")
        except OSError as exc:
            raise ServiceError(f"cannot write the PID file {self.path}: {exc.strerror}; "
                               "choose another --instance or run as root") from None

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if int(self.path.read_text()) == self.pid:
                self.path.unlink()


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise ServiceError(f"{what} failed: {os.strerror(err)}; --user needs the daemon to "
                           "start as root (with CAP_SETUID, CAP_SETGID and CAP_SETPCAP)")


def lookup_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ServiceError(f"--user {name}: no such user; create it (useradd --system "
                           f"{name}) or name another") from None


def drop_privileges(name: str) -> None:
    """Become user ``name`` (its primary group, no supplementary groups) keeping only
    CAP_NET_ADMIN and CAP_NET_RAW."""
    user = lookup_user(name)
    libc = _libc()
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):  # nothing regained later, even by an exec
        if cap not in KEPT:
            _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "dropping capabilities")
    _check(libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "PR_SET_KEEPCAPS")
    try:
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    except OSError as exc:
        raise ServiceError(f"--user {name}: cannot switch user: {exc.strerror}") from None
    mask = sum(1 << cap for cap in KEPT)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(_CapData(mask, mask, 0), _CapData(0, 0, 0))
    _check(libc.capset(ctypes.byref(header), data), "capset")
    _check(libc.prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "PR_SET_KEEPCAPS")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
