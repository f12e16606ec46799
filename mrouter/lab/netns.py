"""Named network namespaces: create, enter, remove, and find the processes inside.

Theory of operation
-------------------
A *named* namespace is what ``ip netns add`` makes: a bind mount of a namespace file
onto ``/run/netns/NAME``, so the namespace outlives the process that made it and other
tools (``ip netns exec``, ``tcpdump`` via ``ip netns exec``) find it by name.

Namespaces are per *thread* for setns(2) and unshare(CLONE_NEWNET), so:

- :func:`create_here` makes a new namespace and leaves the *calling thread* in it; the
  builder runs in a thread of its own for that reason (the caller's thread never moves);
- :func:`entered` switches the calling thread into a namespace and always back
  (an fd to the original ``/proc/thread-self/ns/net`` is kept meanwhile);
- :func:`call_in` runs a function in a short-lived helper thread inside a namespace, for
  netlink queries (pyroute2 opens its socket in the namespace of the thread that makes
  it, and runs an asyncio loop of its own, which must not meet the caller's).

Python 3.11 has no ``os.setns``/``os.unshare``, so those two and mount(2) are called
through ctypes, as pyroute2.netns does; nothing here runs ``ip``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from mrouter.errors import LabError

NETNS_RUN_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

T = TypeVar("T")

_libc: ctypes.CDLL | None = None
_run_dir_ready = False
_run_dir_lock = threading.Lock()


def _c() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace behind ``fd``."""
    _check(_c().setns(fd, CLONE_NEWNET), "setns")


def path_of(name: str) -> Path:
    return NETNS_RUN_DIR / name


def exists(name: str) -> bool:
    return path_of(name).exists()


def list_names(prefix: str = "") -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_RUN_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def _prepare_run_dir() -> None:
    """Make /run/netns a shared mount point, as iproute2 does, once per process.

    Shared propagation lets namespaces created here be seen (and removed) from other
    mount namespaces; a directory that is not a mount point yet is bind-mounted onto
    itself first.
    """
    global _run_dir_ready
    with _run_dir_lock:
        if _run_dir_ready:
            return
        NETNS_RUN_DIR.mkdir(parents=True, exist_ok=True)
        target = bytes(NETNS_RUN_DIR)
        libc = _c()
        if libc.mount(b"none", target, b"none", MS_SHARED | MS_REC, None) != 0:
            if ctypes.get_errno() != errno.EINVAL:
                _check(-1, f"making {NETNS_RUN_DIR} a shared mount")
            _check(libc.mount(target, target, b"none", MS_BIND | MS_REC, None),
                   f"bind-mounting {NETNS_RUN_DIR}")
            _check(libc.mount(b"none", target, b"none", MS_SHARED | MS_REC, None),
                   f"making {NETNS_RUN_DIR} a shared mount")
        _run_dir_ready = True


def create_here(name: str) -> None:
    """Create namespace ``name`` and leave the calling thread inside it.

    Raises LabError if the name is taken (the mount point is claimed with O_EXCL, so two
    processes can never share a name) or the kernel refuses.
    """
    _prepare_run_dir()
    path = path_of(name)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    except FileExistsError:
        raise LabError(
            f"network namespace {name!r} already exists; remove it (mrouter lab down, or "
            f"ip netns del {name}) or choose another lab name"
        ) from None
    try:
        _check(_c().unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        _check(_c().mount(b"/proc/thread-self/ns/net", bytes(path), b"none", MS_BIND, None),
               f"bind-mounting the new namespace on {path}")
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise LabError(f"cannot create network namespace {name!r}: {exc}") from None


def remove(name: str) -> bool:
    """Unmount and delete a named namespace; True if it existed. Idempotent.

    The namespace itself (and the veths in it) goes away when nothing else holds it:
    end the processes inside first (:func:`pids_in`).
    """
    path = path_of(name)
    if not path.exists():
        return False
    if _c().umount2(bytes(path), MNT_DETACH) != 0 and ctypes.get_errno() == errno.EPERM:
        _check(-1, f"unmounting {path}")  # without privilege: say so, not "busy" at unlink
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise LabError(f"cannot remove network namespace {name!r}: {exc}") from None
    return True


def open_fd(name: str) -> int:
    try:
        return os.open(path_of(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise LabError(
            f"network namespace {name!r} does not exist (was the lab taken down?)"
        ) from None


def open_current_fd() -> int:
    """An fd of the calling thread's own network namespace, to come back to with setns."""
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


@contextmanager
def entered(name: str) -> Iterator[None]:
    """Switch the calling thread into namespace ``name``; always switch back."""
    fd = open_fd(name)
    try:
        with entered_fd(fd):
            yield
    finally:
        os.close(fd)


@contextmanager
def entered_fd(fd: int) -> Iterator[None]:
    original = open_current_fd()
    try:
        setns(fd)
        try:
            yield
        finally:
            setns(original)
    finally:
        os.close(original)


def call_in(name: str, func: Callable[[], T]) -> T:
    """Run ``func()`` in a helper thread inside namespace ``name`` and return its result."""
    fd = open_fd(name)
    try:
        return call_in_thread(lambda: _with_fd(fd, func))
    finally:
        os.close(fd)


def _with_fd(fd: int, func: Callable[[], T]) -> T:
    setns(fd)  # a throw-away thread: no need to switch back
    return func()


def call_in_thread(func: Callable[[], T], on_interrupt: Callable[[], None] | None = None) -> T:
    """Run ``func()`` in a new thread, re-raising what it raised, and return its result.

    If the caller is interrupted (Ctrl-C) while waiting, ``on_interrupt()`` is called
    (to ask ``func`` to stop early), the thread is still waited for, and the interrupt
    is re-raised.
    """
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = func()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, name="mrouter-lab", daemon=True)
    thread.start()
    try:
        thread.join()
    except BaseException:
        if on_interrupt is not None:
            on_interrupt()
        thread.join()  # Ctrl-C: let the thread finish what it started, then re-raise
        raise
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def pids_in(names: Iterable[str]) -> dict[int, str]:
    """Processes (by PID) whose network namespace is one of ``names``, except ours."""
    wanted: dict[tuple[int, int], str] = {}
    for name in names:
        try:
            st = os.stat(path_of(name))
        except FileNotFoundError:
            continue
        wanted[(st.st_dev, st.st_ino)] = name
    found: dict[int, str] = {}
    if not wanted:
        return found
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:  # gone meanwhile, or a kernel thread
            continue
        owner = wanted.get((st.st_dev, st.st_ino))
        if owner is not None:
            found[int(entry)] = owner
    return found
