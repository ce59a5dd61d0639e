"""Where a proxied request may go: the upstream's scheme, host and port, and the caller's path.

The proxy forwards the caller's ``api-key`` / ``Authorization``, so the upstream
URL is built from parts and never by pasting the request target onto a string:
scheme, host and port come from ``--upstream`` alone; the caller contributes an
origin-form path (``/...``) and a query, checked byte by byte. Pasting let a
target like ``@evil:8080/x`` turn ``https://resource`` + target into a URL whose
host was ``evil`` (the upstream became userinfo), and ``/../`` climb out of the
upstream's path prefix. Anything a legitimate client never sends is refused
with a reason, so the proxy answers 400 instead of guessing.

``Host`` is checked too (``allowed_host``): a reverse proxy answers only to the
names it is reached by, which stops DNS-rebinding pages and forward-proxy use.
Pure: no I/O.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from collections.abc import Iterable

import httpx2


class BadTarget(ValueError):
    """The request cannot be forwarded; the message says why (it is sent to the caller)."""


# RFC 3986 pchar (unreserved, sub-delims, ":", "@") plus "/" and "%" (checked as %XX separately).
_PATH_BYTES = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_QUERY_BYTES = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")
_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_ENCODED_NUL = re.compile(rb"%00")
_SEPARATOR_OR_DOT = re.compile(rb"%(2[Ff]|5[Cc]|2[Ee])")
_DECODED = {b"%2f": b"/", b"%5c": b"/", b"%2e": b"."}


def _has_dot_segment(path: bytes) -> bool:
    """``.`` or ``..`` segments, also once ``%2E``, ``%2F`` and ``%5C`` are decoded (``/..%2F..`` included):
    an upstream (or a gateway before it) that decodes them would climb out of the prefix."""
    decoded = _SEPARATOR_OR_DOT.sub(lambda m: _DECODED[m.group(0).lower()], path).replace(b"\\", b"/")
    return any(segment in (b".", b"..") for segment in decoded.split(b"/"))


def upstream_url(base: httpx2.URL, raw_path: bytes, query: bytes) -> httpx2.URL:
    """The URL to forward to: ``base``'s scheme, host, port and path prefix, the caller's path and query.

    Raises ``BadTarget`` for anything but a plain origin-form path: an absolute
    (``http://host/...``) or authority-form (``host:port``) target, a path not
    starting with ``/``, dot segments (also percent-encoded, or next to an
    encoded slash), an encoded NUL, and bytes outside RFC 3986.
    """
    if raw_path.startswith((b"http://", b"https://")) or b"://" in raw_path[:16]:
        raise BadTarget("absolute-form request targets are not accepted: send the path only "
                        "(this proxy forwards to its one upstream)")
    if not raw_path.startswith(b"/"):
        raise BadTarget("the request target must be a path starting with '/' (origin-form)")
    if not _PATH_BYTES.fullmatch(raw_path) or _PERCENT.search(raw_path):
        raise BadTarget("the request path has characters that must be percent-encoded")
    if _ENCODED_NUL.search(raw_path):
        raise BadTarget("the request path has an encoded NUL")
    if _has_dot_segment(raw_path):
        raise BadTarget("the request path has '.' or '..' segments")
    if query and (not _QUERY_BYTES.fullmatch(query) or _PERCENT.search(query)):
        raise BadTarget("the query string has characters that must be percent-encoded")
    prefix = base.raw_path.split(b"?", 1)[0].rstrip(b"/")
    target = prefix + raw_path + (b"?" + query if query else b"")
    # Parsed from a string, not built from parts: httpx2 caches string parses, and a proxy sees the same few
    # targets again and again (same result: the target is checked above to be plain RFC 3986 bytes).
    url = httpx2.URL(f"{base.scheme}://{base.netloc.decode('ascii')}{target.decode('ascii')}")
    if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):  # defence in depth
        raise BadTarget("the request target would leave the upstream")
    return url


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_HOST_HEADER = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9\-._]+))(?::(?P<port>[0-9]{1,5}))?")


def host_name(value: str) -> str:
    """The host of a ``Host`` header value (no port, no brackets, lower case); ``BadTarget`` if malformed."""
    m = _HOST_HEADER.fullmatch(value.strip())
    if m is None:
        raise BadTarget("the Host header is not a host name or address")
    return (m.group("v6") or m.group("name")).lower().rstrip(".")


def _is_loopback(name: str) -> bool:
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def own_names() -> frozenset[str]:
    """This machine's own names (hostname and fully qualified name), lower case."""
    names = {socket.gethostname().lower()}
    with contextlib.suppress(OSError):  # a broken resolver: the hostname alone
        names.add(socket.getfqdn().lower())
    return frozenset(n for n in names if n)


class HostPolicy:
    """Which ``Host`` values the proxy answers to.

    By default: loopback names and addresses, this machine's hostname, and the
    local address the connection came in on (a client that dialled an IP sends
    that IP). ``allowed`` adds names (``"*"``: any well-formed host). Ports are
    not compared: port mappings (containers, load balancers) change them, and
    a name the proxy was not reached by is what gives an attacker away.
    """

    def __init__(self, allowed: Iterable[str] | None = None) -> None:
        names = {a.strip().lower().rstrip(".") for a in allowed or () if a.strip()}
        self.any = "*" in names
        self.allowed = frozenset(names - {"*"})
        self._own = own_names()

    def check(self, host_header: str | None, local_address: str | None) -> None:
        """Raise ``BadTarget`` unless ``host_header`` names this proxy (a missing header passes: HTTP/1.0)."""
        if host_header is None:
            return
        name = host_name(host_header)
        if self.any or name in self.allowed or name in self._own or _is_loopback(name):
            return
        if local_address is not None and name == local_address.lower().strip("[]"):
            return
        raise BadTarget(f"this proxy does not answer to Host {name!r} "
                        "(start it with --allowed-host NAME to accept that name)")
