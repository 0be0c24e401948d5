"""Which address is the client: the one place every per-IP limit asks.

Without trusted proxies the client is the TCP peer, whatever headers say: anyone can write an
`X-Forwarded-For`. Behind a load balancer every connection comes from the balancer, so
`TRUSTED_PROXIES` names the hops whose `X-Forwarded-For` is believed. Each trusted hop appends
the address it saw, so the list is read from the right: the first address that is not itself a
trusted proxy is the client. Anything to its left was written by the client and is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import hdrs, web

from sneakerd.config import Network
from sneakerd.web import keys

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> Address | None:
    """An address as peers and proxies write it (`1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `::1`);
    None for anything else. IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is the IPv4 address."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def resolve(peer: str | None, forwarded: Iterable[str], proxies: Sequence[Network]) -> str | None:
    """The client's address from the TCP peer and the `X-Forwarded-For` header values.

    `forwarded` is read only when the peer is trusted. A hop that wrote something that is not
    an address ends the walk: the trusted hop to its right is then the best-known client.
    """
    peer_address = parse_address(peer) if peer is not None else None
    if peer_address is None:
        return peer
    if not proxies or not is_trusted(peer_address, proxies):
        return str(peer_address)
    hops = [hop for value in forwarded for hop in value.split(",") if hop.strip()]
    client = peer_address
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            break
        client = address
        if not is_trusted(address, proxies):
            break
    return str(client)


def client_address(request: web.Request) -> str | None:
    """The client's address for `request`, as `TRUSTED_PROXIES` lets us know it."""
    proxies = request.app[keys.SETTINGS].trusted_proxies
    return resolve(request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, ()), proxies)
