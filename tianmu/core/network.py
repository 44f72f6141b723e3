"""Where a request comes from: the connection's address (REMOTE_ADDR), or, when the connection comes from one of
the reverse proxies named in TIANMU_TRUSTED_PROXIES, the address that proxy saw (X-Forwarded-For).

Forwarding headers are the client's own claims unless a proxy we trust wrote them, so `TrustedProxyMiddleware`
(first in MIDDLEWARE) removes them from every request that does not come from a trusted proxy, and sets
REMOTE_ADDR to the client address for every request that does. Everything after it (the login throttle,
`request.is_secure()` through SECURE_PROXY_SSL_HEADER) can then believe REMOTE_ADDR and X-Forwarded-Proto.

The web server must not rewrite the address itself: `tianmu run` starts uvicorn with `--no-proxy-headers`
(uvicorn otherwise believes X-Forwarded-For from 127.0.0.1, i.e. from any local client). See docs/security.md.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

__all__ = ["FORWARDING_HEADERS", "parse_proxies", "client_address", "client_ip", "TrustedProxyMiddleware"]

# Headers only a trusted proxy may set; Django reads X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER), the others are
# dropped so that no later code is tempted to believe them.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
                      "HTTP_X_FORWARDED_PORT", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
PEER = "tianmu.peer_addr"  # the connection's own address, kept in request.META once resolved


@lru_cache(maxsize=8)
def parse_proxies(proxies: tuple[str, ...]) -> tuple:
    """Addresses or networks ("10.0.0.1", "10.0.0.0/8", "fd00::/64"); ValueError for anything else."""
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip())


def _address(text: str):
    """An IP address from a forwarding header entry ("1.2.3.4", "1.2.3.4:80", "[2001:db8::1]:80"), or None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, networks) -> bool:
    if address is None:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks if network.version == address.version)


def client_address(meta) -> str:
    """The client's address for a request's META (before TrustedProxyMiddleware changed it).

    From a trusted proxy, X-Forwarded-For is read from the right: each trusted proxy appended the address it saw,
    so the first address that is not a trusted proxy is the client (anything left of it the client may have
    forged). A hop a proxy wrote that is not an address stops the walk at the proxy that wrote it."""
    peer = meta.get("REMOTE_ADDR") or ""
    networks = parse_proxies(tuple(settings.TIANMU_TRUSTED_PROXIES))
    if not networks or not _trusted(_address(peer), networks):
        return peer
    client = peer
    for hop in reversed(meta.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        if not hop.strip():
            continue
        address = _address(hop)
        if address is None:
            break
        client = str(address)
        if not _trusted(address, networks):
            break
    return client


def client_ip(request) -> str:
    """The client address of a request (AXES_CLIENT_IP_CALLABLE); resolved once, by the middleware if it ran."""
    meta = request.META
    if PEER not in meta:
        _resolve(meta)
    return meta.get("REMOTE_ADDR") or ""


def _resolve(meta) -> None:
    peer = meta.get("REMOTE_ADDR") or ""
    meta[PEER] = peer
    if _trusted(_address(peer), parse_proxies(tuple(settings.TIANMU_TRUSTED_PROXIES))):
        meta["REMOTE_ADDR"] = client_address(meta)
    else:
        for header in FORWARDING_HEADERS:
            meta.pop(header, None)


class TrustedProxyMiddleware:
    """First in MIDDLEWARE: REMOTE_ADDR becomes the client address; forwarding headers survive only from a
    trusted proxy."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if PEER not in request.META:
            _resolve(request.META)
        return self.get_response(request)
