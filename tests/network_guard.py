"""No connection beyond this machine, ever: a guard for the test suite and every Python
process it starts.

install() wraps the socket calls that reach other machines — socket.connect, connect_ex,
sendto, sendmsg, create_connection, getaddrinfo, gethostbyname(_ex) — so that any address
other than the loopback (127.0.0.0/8, ::1, "localhost") or a Unix socket raises
OutboundConnectionBlocked, naming the address. The error is a ConnectionRefusedError, so a
library that copes with being offline copes with it too; every refusal is therefore also
recorded (`blocked`, and the file named by $LUMARA_NETWORK_GUARD_LOG for child processes),
and tests/conftest.py fails the test during which one happened.

Two ways in: tests/conftest.py imports this module as tests.network_guard; child Pythons
load it by path from tests/guarded_site/sitecustomize.py (that folder is prepended to
PYTHONPATH). Code below the Python level (C libraries opening their own sockets) is out of
its reach.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import threading
import traceback
from pathlib import Path
from typing import Any, Iterator

LOG_ENV = "LUMARA_NETWORK_GUARD_LOG"
# Prepended to a child's PYTHONPATH: its sitecustomize.py installs this guard.
GUARDED_SITE = Path(__file__).resolve().parent / "guarded_site"
# Names that never leave the machine (resolved from /etc/hosts, never by DNS).
LOCAL_NAMES = frozenset({"localhost", "localhost."})
# What a server binds to ("all interfaces"): resolving it sends nothing anywhere.
BIND_ANY = frozenset({"", "0.0.0.0", "::"})
# Families that stay on this machine whatever the address: files and the kernel.
LOCAL_FAMILIES = frozenset(getattr(socket, name) for name in ("AF_UNIX", "AF_NETLINK")
                           if hasattr(socket, name))
INTERNET_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})

log = logging.getLogger("network_guard")

# Every refusal in this process, oldest first ("<what> <address> at <file:line>").
blocked: list[str] = []
_lock = threading.Lock()
_expecting = threading.local()  # .provoked: refusals a test provokes on purpose, this thread
_MARK = "_lumara_network_guard"  # set on each wrapper: install() is idempotent across copies


class OutboundConnectionBlocked(ConnectionRefusedError):
    """A connection (or name lookup) that would have left this machine."""


def is_loopback(host: Any) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped), and the name localhost."""
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    host = host.strip().lower()
    if host in LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False  # any other name needs a DNS lookup, which itself leaves the machine
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def refuse(action: str, target: Any) -> None:
    """Record the attempt and raise, naming the address and the code that tried."""
    caller = next((f"{frame.filename}:{frame.lineno}"
                   for frame in reversed(traceback.extract_stack()[:-2])
                   if frame.filename != __file__ and "/socket.py" not in frame.filename),
                  "?")
    message = (f"network guard: {action} {target!r} refused — only loopback and Unix "
               f"sockets are allowed (Lumara never reaches beyond this machine); at {caller}")
    provoked = getattr(_expecting, "provoked", None)
    if provoked is not None:
        provoked.append(message)
        raise OutboundConnectionBlocked(message)
    with _lock:
        blocked.append(message)
    path = os.environ.get(LOG_ENV)
    if path:
        try:
            with open(path, "a", encoding="utf-8") as file:
                file.write(f"[pid {os.getpid()}] {message}\n")
        except OSError:
            pass
    log.error("%s", message)
    raise OutboundConnectionBlocked(message)


def check_address(family: int, address: Any, action: str) -> None:
    if family in LOCAL_FAMILIES:
        return
    if family in INTERNET_FAMILIES:
        if not isinstance(address, tuple) or not address:
            return  # not an address at all: the real call raises its own TypeError
        if is_loopback(address[0]):
            return
    refuse(f"{action} (family {family})" if family not in INTERNET_FAMILIES else action,
           address)


def check_host(host: Any, action: str) -> None:
    if host is None or host in BIND_ANY or is_loopback(host):
        return
    refuse(action, host)


@contextlib.contextmanager
def expected() -> Iterator[list[str]]:
    """Refusals a test provokes on purpose (on this thread): still raised, collected in the
    yielded list instead of the record that fails the test."""
    _expecting.provoked = provoked = []
    try:
        yield provoked
    finally:
        _expecting.provoked = None


def installed() -> bool:
    return getattr(socket.socket.connect, _MARK, False)


def install() -> None:
    """Guard this process's sockets (again: a no-op)."""
    if installed():
        return

    def mark(wrapper):
        setattr(wrapper, _MARK, True)
        return wrapper

    real = {name: getattr(socket.socket, name)
            for name in ("connect", "connect_ex", "sendto", "sendmsg")}
    real_create_connection = socket.create_connection
    real_getaddrinfo = socket.getaddrinfo
    real_gethostbyname = socket.gethostbyname
    real_gethostbyname_ex = socket.gethostbyname_ex

    @mark
    def connect(self, address):
        check_address(self.family, address, "connect to")
        return real["connect"](self, address)

    @mark
    def connect_ex(self, address):
        check_address(self.family, address, "connect_ex to")
        return real["connect_ex"](self, address)

    @mark
    def sendto(self, data, *flags_and_address):
        if flags_and_address:  # sendto(data, address) or sendto(data, flags, address)
            check_address(self.family, flags_and_address[-1], "sendto")
        return real["sendto"](self, data, *flags_and_address)

    @mark
    def sendmsg(self, buffers, *args, **kwargs):
        address = args[2] if len(args) > 2 else kwargs.get("address")
        if address is not None:
            check_address(self.family, address, "sendmsg to")
        return real["sendmsg"](self, buffers, *args, **kwargs)

    @mark
    def create_connection(address, *args, **kwargs):
        check_host(address[0] if isinstance(address, tuple) and address else address,
                   "create_connection to")
        return real_create_connection(address, *args, **kwargs)

    @mark
    def getaddrinfo(host, *args, **kwargs):
        check_host(host, "getaddrinfo (name lookup) for")
        return real_getaddrinfo(host, *args, **kwargs)

    @mark
    def gethostbyname(host):
        check_host(host, "gethostbyname (name lookup) for")
        return real_gethostbyname(host)

    @mark
    def gethostbyname_ex(host):
        check_host(host, "gethostbyname_ex (name lookup) for")
        return real_gethostbyname_ex(host)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.sendto = sendto
    socket.socket.sendmsg = sendmsg
    socket.create_connection = create_connection
    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = gethostbyname_ex
