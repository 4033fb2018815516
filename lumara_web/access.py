"""Who Lumara answers: the host names it accepts and, when it listens beyond the loopback,
the access token every request must carry (kept in `<data_dir>/access-token`). Plain Python:
web/security.py applies the policy to each request."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

log = logging.getLogger(__name__)

TOKEN_FILE = "access-token"
# 32 characters: a token made by hand must be at least as long as a 24-byte random one.
MIN_TOKEN_CHARS = 32
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True)
class AccessPolicy:
    """Who Lumara answers: the host names it accepts and, off the loopback, its token."""

    host_names: frozenset[str]
    any_ip_address: bool  # bound to every interface: an IP literal cannot be rebound
    token: str | None
    token_is_new: bool  # created on this start (server.py prints it once)

    @property
    def token_required(self) -> bool:
        return self.token is not None

    def allows_host(self, name: str) -> bool:
        return name in self.host_names or (self.any_ip_address and is_ip_address(name))

    def token_matches(self, presented: str) -> bool:
        # Constant time: the comparison reveals nothing about how much of a guess was right.
        return self.token is not None and hmac.compare_digest(
            presented.encode("utf-8", "replace"), self.token.encode("utf-8"))


def build_policy(settings: dict) -> AccessPolicy:
    host = settings["host"].strip().lower().strip("[]")
    names = LOOPBACK_NAMES | {name.lower().strip("[]") for name in settings["allowed_hosts"]}
    if host not in WILDCARD_HOSTS:
        names |= {host}
    token, created = (None, False) if is_loopback(host) else \
        load_or_create_token(Path(settings["data_dir"]))
    return AccessPolicy(frozenset(names), any_ip_address=host in WILDCARD_HOSTS, token=token,
                        token_is_new=created)


def is_loopback(host: str) -> bool:
    return host == "localhost" or (is_ip_address(host) and ipaddress.ip_address(host).is_loopback)


def load_or_create_token(data_dir: Path) -> tuple[str, bool]:
    """The access token and whether it was created now. Created once, readable by the user
    alone (0600 from the start: O_EXCL never opens a file, or a symlink, that already exists)."""
    path = data_dir / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text(encoding="utf-8").strip()
        if len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(f"{path} holds no usable access token ({len(token)} characters, "
                              f"at least {MIN_TOKEN_CHARS} needed): delete it and start Lumara "
                              f"again to make a new one.") from None
        if path.stat().st_mode & 0o077:
            log.warning("%s can be read by other users: run chmod 600 on it", path)
        return token, False
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    return token, True


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
