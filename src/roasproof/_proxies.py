"""Which address is the visitor's: peer address, trusted proxies, forwarding headers.

Private; the public names (:class:`TrustedProxies`, :func:`parse_trusted_proxies`,
:func:`client_ip`) are re-exported by :mod:`roasproof.capture`.

``X-Forwarded-For`` and RFC 7239 ``Forwarded`` are lists that every proxy
appends to, so a client can put anything on the left. Only the entries your own
proxies appended, on the right, can be believed; that is why the headers are
read only when the user says which proxies are theirs, and always from the
right. Anything that is not an IP address stops the walk: sending no IP beats
sending a forged one, or the load balancer's, to every ad platform.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from roasproof._event_checks import IPV4
from roasproof.errors import ConfigurationError

__all__ = [
    "ForwardingHeader",
    "TrustedProxies",
    "TrustedProxiesSetting",
    "client_ip",
    "forwarded_elements",
    "forwarded_origin",
    "parse_ip",
    "parse_trusted_proxies",
    "trusts_headers",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ForwardingHeader = Literal["x-forwarded-for", "forwarded"]

_MAX_IP = 64  # longer than any address with brackets, port and zone
_FIX = (
    "pass the number of proxies in front of the app that append to X-Forwarded-For "
    "(trusted_proxies=1) or their networks (trusted_proxies=['10.0.0.0/8'])"
)

logger = logging.getLogger("roasproof")


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """Which entries of the forwarding header to believe, counted from the right.

    ``hops``: how many proxies in front of the app append to the header; the
    client is the ``hops``-th entry from the right (like Werkzeug's ProxyFix
    ``x_for``). ``networks``: your proxies' addresses; walking from the right,
    entries inside them are skipped and the first other one is the client
    (like uvicorn's ``--forwarded-allow-ips``); the header is read only when
    the peer itself is one of them. Neither (the default) trusts no header.

    ``header`` is the one header read: ``"x-forwarded-for"`` or the RFC 7239
    ``"forwarded"``. Never both, because a proxy that appends to one passes the
    other through from the client unchanged.

    .. versionadded:: 0.1.0
    """

    hops: int = 0
    networks: tuple[IPNetwork, ...] = ()
    header: ForwardingHeader = "x-forwarded-for"

    def __post_init__(self) -> None:
        if isinstance(self.hops, bool) or not isinstance(self.hops, int) or self.hops < 0:
            raise _config_error(f"{self.hops!r} is not a hop count (an integer >= 0)")
        if self.hops and self.networks:
            raise _config_error("give either a hop count or networks, not both")
        if self.header not in ("x-forwarded-for", "forwarded"):
            raise _config_error(
                f"header {self.header!r} is not supported; use 'x-forwarded-for' or 'forwarded'"
            )

    @property
    def enabled(self) -> bool:
        """Whether any forwarding header is read at all."""
        return bool(self.hops or self.networks)

    def trusts(self, address: IPAddress) -> bool:
        """Whether ``address`` is inside one of the trusted proxy networks."""
        return any(address in network for network in self.networks)


TrustedProxiesSetting = int | str | Sequence[str] | TrustedProxies | None
#: The default for each header, made once: ``None`` is read on every captured request.
_TRUST_NOTHING: dict[str, TrustedProxies] = {
    header: TrustedProxies(header=header) for header in ("x-forwarded-for", "forwarded")
}


def _config_error(problem: str) -> ConfigurationError:
    return ConfigurationError(f"trusted_proxies: {problem}; {_FIX}")


def parse_trusted_proxies(
    value: TrustedProxiesSetting, *, header: ForwardingHeader = "x-forwarded-for"
) -> TrustedProxies:
    """Read the ``trusted_proxies`` setting: a hop count, CIDR networks, or ``None``.

    Accepts ``2``, ``"2"`` (from an environment variable), ``["10.0.0.0/8",
    "192.168.1.7"]``, ``"10.0.0.0/8, 192.168.1.7"`` or a
    :class:`TrustedProxies` (returned as is). ``None``, ``0`` and ``""`` trust
    no header. Anything else raises :class:`~roasproof.ConfigurationError`, so
    a typo fails at start-up instead of silently trusting the wrong entry.

    .. versionadded:: 0.1.0
    """
    setting: object = value
    if isinstance(setting, TrustedProxies):
        return setting
    if setting is None:
        return _TRUST_NOTHING.get(header) or TrustedProxies(header=header)
    if isinstance(setting, int) and not isinstance(setting, bool):
        return TrustedProxies(hops=setting, header=header)
    if isinstance(setting, str):
        text = setting.strip()
        if text.isascii() and text.isdigit():
            return TrustedProxies(hops=int(text), header=header)
        setting = [part for part in text.split(",") if part.strip()]
    if not isinstance(setting, Sequence) or isinstance(setting, bytes):
        raise _config_error(f"a {type(setting).__name__} is not a hop count or list of networks")
    return TrustedProxies(networks=tuple(_parse_network(item) for item in setting), header=header)


def _parse_network(item: object) -> IPNetwork:
    if not isinstance(item, str):
        raise _config_error(f"{item!r} is not a network (a string such as '10.0.0.0/8')")
    text = item.strip()
    if text == "*":
        raise _config_error("'*' would trust every address, so any client could forge its IP")
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise _config_error(f"{text!r} is not an IP address or CIDR network") from None


def parse_ip(text: str | None) -> IPAddress | None:
    """An address from a peer or header entry, or ``None`` for anything else.

    Strips quotes, ``[brackets]``, ports and IPv6 zones; unwraps IPv4-mapped
    IPv6 (``::ffff:203.0.113.7``). ``unknown``, ``_obfuscated`` tokens,
    ``unix:`` sockets and Starlette's ``testclient`` give ``None``.
    """
    if not text or len(text) > _MAX_IP:
        return None
    text = text.strip().strip('"')
    if text.startswith("["):
        end = text.find("]")  # [v6] or [v6]:port
        if end == -1:
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # v4:port
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_ip(
    peer: str | None, headers: Mapping[str, str], trusted: TrustedProxies | None
) -> str | None:
    """The visitor's IP address, normalized, or ``None`` when it cannot be known.

    ``peer`` is the address that connected to the app (``REMOTE_ADDR``,
    ``scope["client"][0]``); ``headers`` has lower-case names. Without trusted
    proxies the peer is the answer. With them, the configured forwarding header
    is read from the right; an entry that is not an IP address (``unknown``,
    an obfuscated ``_token``) stops the walk and gives ``None`` rather than a
    guess. An absent or empty header falls back to the peer.

    .. versionadded:: 0.1.0
    """
    if trusted is None or not trusted.enabled:
        forwarded = headers.get("x-forwarded-for") or headers.get("forwarded")
        if not forwarded and peer and IPV4.fullmatch(peer):
            return peer  # the usual peer: a dotted quad as ipaddress writes it
        address = parse_ip(peer)
        if forwarded and address is not None and not address.is_global:
            _warn_untrusted_forwarding()
        return _text(address)
    address = parse_ip(peer)
    if trusted.networks and address is not None and not trusted.trusts(address):
        return str(address)  # not our proxy: its forwarding headers are the client's own words
    chain = _forwarding_chain(headers, trusted.header)
    if not chain:
        return _text(address)
    if trusted.hops:
        return _text(parse_ip(chain[-trusted.hops] if len(chain) >= trusted.hops else chain[0]))
    for entry in reversed(chain):
        hop = parse_ip(entry)
        if hop is None or not trusted.trusts(hop):
            return _text(hop)
    return _text(hop)  # every hop is a proxy of ours: the left-most one made the request


def _text(address: IPAddress | None) -> str | None:
    return None if address is None else str(address)


def _forwarding_chain(headers: Mapping[str, str], header: ForwardingHeader) -> list[str | None]:
    """The client addresses listed in the forwarding header, left to right."""
    raw = headers.get(header) or ""
    if header == "forwarded":
        return [element.get("for") for element in forwarded_elements(raw)]
    return [entry for entry in (part.strip() for part in raw.split(",")) if entry]


def forwarded_elements(value: str) -> list[dict[str, str]]:
    """Split an RFC 7239 ``Forwarded`` header into one parameter dict per hop.

    Quoted strings may hold ``,`` and ``;``. Empty elements are skipped. An
    unterminated quote makes the right-most element empty (unknown): otherwise
    a client could swallow the element its proxy appended and shift the count.
    One pass, no regular expression, so a hostile header costs linear time.
    """
    elements: list[dict[str, str]] = []
    pairs: dict[str, str] = {}
    token: list[str] = []
    content = quoted = escaped = False
    for char in value:
        if escaped:
            token.append(char)
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            else:
                token.append(char)
        elif char in ",;":
            _add_pair(pairs, token)
            token = []
            if char == ",":
                if content:
                    elements.append(pairs)
                pairs, content = {}, False
        else:
            quoted = char == '"'
            if not quoted:
                token.append(char)
            content = content or not char.isspace()
    _add_pair(pairs, token)
    if quoted or escaped:
        pairs, content = {}, True
    if content:
        elements.append(pairs)
    return elements


def _add_pair(pairs: dict[str, str], token: list[str]) -> None:
    key, sep, value = "".join(token).partition("=")
    if sep:
        pairs.setdefault(key.strip().lower(), value.strip())


def trusts_headers(peer: str | None, trusted: TrustedProxies) -> bool:
    """Whether the request came through a trusted proxy, so its headers count.

    A peer that is not an IP address (a UNIX socket) counts as a proxy of ours:
    only a process on the same machine can connect to it.
    """
    if not trusted.networks:
        return bool(trusted.hops)
    address = parse_ip(peer)
    return address is None or trusted.trusts(address)


def forwarded_origin(
    headers: Mapping[str, str], trusted: TrustedProxies
) -> tuple[str | None, str | None]:
    """Scheme and host announced by the nearest proxy (the right-most value)."""
    if trusted.header == "forwarded":
        elements = forwarded_elements(headers.get("forwarded") or "")
        nearest = elements[-1] if elements else {}
        proto, host = nearest.get("proto"), nearest.get("host")
    else:
        proto = _last_entry(headers.get("x-forwarded-proto"))
        host = _last_entry(headers.get("x-forwarded-host"))
    proto = proto.lower() if proto and proto.lower() in ("http", "https") else None
    return proto, host


def _last_entry(value: str | None) -> str | None:
    entry = (value or "").rpartition(",")[2].strip()
    return entry or None


@cache
def _warn_untrusted_forwarding() -> None:
    """Once per process: the classic misconfiguration that sends the proxy's IP everywhere."""
    logger.warning(
        "roasproof: requests come from a non-public address with X-Forwarded-For or Forwarded, "
        "but trusted_proxies is not set, so client_ip_address is your proxy's address for "
        "every visitor; set trusted_proxies (see the 'Client IP behind proxies' docs)"
    )
