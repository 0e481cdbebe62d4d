"""Where a side effect may go: webhook targets and outbox paths the worker's policy allows.

A webhook target must be `https`, or `http` to a host on the allow-list
(LANEWAY_WEBHOOK_ALLOW_HOSTS); and every address its host resolves to must be a public one:
loopback, private, link-local (cloud metadata, 169.254.169.254), shared, multicast, reserved
and unspecified addresses are refused unless the host is allow-listed. The client checks at
submit time, for an early error; the worker checks again at delivery, after resolving the name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from laneway.jobs import outbox_path_problem, webhook_url_problem

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Names that are internal whatever they resolve to.
INTERNAL_NAMES: Final = ("localhost", "metadata.google.internal", "metadata")
RESOLVE_TIMEOUT_SECONDS: Final = 5.0


class DestinationRefused(ValueError):
    """A side effect's destination is not allowed; the message says why and what to change."""


@dataclass(frozen=True)
class WebhookPolicy:
    allow_hosts: tuple[str, ...] = ()

    def allows_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        address = _address(host)
        for allowed in self.allow_hosts:
            if allowed == host:
                return True
            if address is not None and "/" in allowed:
                try:
                    if address in ipaddress.ip_network(allowed, strict=False):
                        return True
                except ValueError:
                    continue
        return False

    def check_url(self, url: str) -> str:
        """The URL's host, or DestinationRefused for a URL no resolution could make safe."""
        problem = webhook_url_problem(url)
        if problem is not None:
            raise DestinationRefused(problem)
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if self.allows_host(host):
            return host
        if parts.scheme != "https":
            raise DestinationRefused(
                f"webhook {_shown(url)} must use https: plain http goes only to hosts on "
                "LANEWAY_WEBHOOK_ALLOW_HOSTS"
            )
        if host in INTERNAL_NAMES or host.endswith((".localhost", ".internal", ".local")):
            raise DestinationRefused(_internal(url, host))
        address = _address(host)
        if address is not None:
            self.check_addresses(url, host, [address])
        return host

    def check_addresses(self, url: str, host: str, addresses: list[IpAddress]) -> None:
        if self.allows_host(host):
            return
        for address in addresses:
            if not _public(address):
                raise DestinationRefused(_internal(url, f"{host} ({address})"))

    async def check(self, url: str, *, must_resolve: bool = True) -> None:
        """Check `url` and the addresses its host resolves to now.

        With `must_resolve=False` (submit time), a name that does not resolve here passes:
        the worker resolves it again at delivery and refuses it there if it must."""
        host = self.check_url(url)
        if self.allows_host(host) or _address(host) is not None:
            return
        try:
            addresses = await resolve(host, urlsplit(url).port)
        except OSError as error:
            if must_resolve:
                raise DestinationRefused(
                    f"cannot resolve the host of webhook {_shown(url)}: {error}"
                ) from None
            return
        self.check_addresses(url, host, addresses)


async def resolve(host: str, port: int | None) -> list[IpAddress]:
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS
    )
    found: list[IpAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = _address(str(sockaddr[0]).split("%", 1)[0])
        if address is not None:
            found.append(address)
    if not found:
        raise OSError(f"no address for {host}")
    return found


def outbox_destination(root: Path, sub_path: str, file_name: str) -> Path:
    """The file `file_name` in `root/sub_path`, or DestinationRefused if it leaves the root.

    Checked on the resolved paths, so a symlink inside the outbox cannot lead out of it."""
    problem = outbox_path_problem(sub_path)
    if problem is not None:
        raise DestinationRefused(problem)
    return inside(root, Path(sub_path) / file_name)


def inside(root: Path, relative_or_absolute: Path) -> Path:
    """`root / path` resolved, or DestinationRefused when it is not under the resolved root."""
    real_root = root.resolve()
    target = (root / relative_or_absolute).resolve()
    if target == real_root or not target.is_relative_to(real_root):
        raise DestinationRefused(
            f"outbox delivery to {relative_or_absolute} is refused: it leaves the outbox "
            f"root {root} (LANEWAY_OUTBOX_DIR)"
        )
    return target


def _address(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _shown(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _internal(url: str, where: str) -> str:
    return (
        f"webhook {_shown(url)} points at an internal address, {where}: loopback, private, "
        "link-local and metadata addresses are refused unless the host is on "
        "LANEWAY_WEBHOOK_ALLOW_HOSTS"
    )
