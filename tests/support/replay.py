"""A real HTTP/1.1 replay server on a loopback port, for transport-level tests.

Standard library only (brotli / zstandard are imported lazily, only when a response asks for them).

    with ReplayServer() as srv:
        srv.add("POST", "/openai/v1/chat/completions", CannedResponse(200, [...], [b"data: ...\\n\\n", ...]))
        httpx2.post(srv.url + "/openai/v1/chat/completions", json={...})
        assert srv.requests[0].method == "POST"

Each connection gets its own daemon thread and is served in a keep-alive loop. Chunked responses
are written one HTTP/1.1 chunk per ``sendall`` with TCP_NODELAY, so a client sees every piece as it
is sent. Responses can be gzip/deflate/br/zstd encoded, delayed between chunks, cut with a TCP RST
or left hanging. Leaving the ``with`` block closes every socket and joins the threads.
"""

from __future__ import annotations

import contextlib
import gzip as _gzip
import http
import json
import re
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from tests.support.cases import Case

__all__ = [
    "CannedResponse",
    "RecordedRequest",
    "ReplayServer",
    "case_response",
    "encode_body",
    "normalize_path",
    "serve_case",
    "split_sse_events",
]

# Headers the server always computes itself (never sent as given).
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
# Headers dropped from recorded cases and recomputed (Content-Encoding is re-applied by the server).
_RECOMPUTED_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding"})
_ENCODINGS = ("gzip", "deflate", "br", "zstd")
_MAX_HEADER_BYTES = 64 * 1024
_POLL_S = 0.05
_SLASHES = re.compile(r"/{2,}")


@dataclass
class CannedResponse:
    """One response the server replays.

    ``chunks`` are the (decoded) body pieces. With ``chunked=True`` each piece is sent as its own
    HTTP/1.1 chunk and flushed at once; otherwise the body goes out with a Content-Length, still
    written piece by piece (so ``reset_after_chunks`` / ``hang_after_chunks`` also cut a
    Content-Length body short). Empty pieces are skipped on the wire (a zero-length chunk would end
    the body).

    With ``gzip=True`` or ``encoding`` set, the joined body is compressed, ``Content-Encoding`` is
    set, and the compressed bytes are split back into ``len(chunks)`` pieces.
    """

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    chunked: bool = True
    chunk_delay_s: float = 0.0
    gzip: bool = False
    encoding: str | None = None
    reset_after_chunks: int | None = None
    hang_after_chunks: int | None = None

    @property
    def body(self) -> bytes:
        """The decoded body (all chunks joined)."""
        return b"".join(self.chunks)

    @property
    def content_encoding(self) -> str | None:
        """The Content-Encoding the server applies, or None."""
        enc = self.encoding or ("gzip" if self.gzip else None)
        if enc is not None and enc not in _ENCODINGS:
            raise ValueError(f"unsupported encoding {enc!r}; expected one of {_ENCODINGS}")
        return enc

    @classmethod
    def json(
        cls,
        status: int,
        payload: object,
        headers: list[tuple[str, str]] | None = None,
        **kwargs: object,
    ) -> CannedResponse:
        """A JSON response with a Content-Length body (convenience constructor)."""
        hdrs = [("Content-Type", "application/json"), *(headers or [])]
        body = json.dumps(payload).encode("utf-8")
        kwargs.setdefault("chunked", False)
        return cls(status, hdrs, [body], **kwargs)  # type: ignore[arg-type]

    def wire_pieces(self) -> list[bytes]:
        """The body pieces as they go on the wire (encoded when an encoding is set)."""
        enc = self.content_encoding
        if enc is None:
            return list(self.chunks)
        encoded = encode_body(self.body, enc)
        return _split_evenly(encoded, max(1, len(self.chunks)))


@dataclass
class RecordedRequest:
    """A request the server received, as received."""

    method: str
    path: str  # raw request target, query included
    headers: list[tuple[str, str]]  # in order, name case as received
    body: bytes  # de-chunked if the request used Transfer-Encoding: chunked

    def header(self, name: str, default: str | None = None) -> str | None:
        """First value of header ``name`` (case-insensitive)."""
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return default

    def json(self) -> object:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def route(self) -> str:
        """The path without query string, repeated slashes collapsed (what routes match on)."""
        return normalize_path(self.path)


def normalize_path(target: str) -> str:
    """Strip the query string / fragment and collapse repeated slashes."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:  # absolute-form request target
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return _SLASHES.sub("/", path) or "/"


def encode_body(body: bytes, encoding: str) -> bytes:
    """Compress ``body`` with a Content-Encoding: gzip, deflate (zlib-wrapped), br or zstd."""
    if encoding == "gzip":
        return _gzip.compress(body, mtime=0)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "br":
        import brotli  # type: ignore[import-not-found,unused-ignore]

        return bytes(brotli.compress(body))
    if encoding == "zstd":
        import zstandard  # type: ignore[import-not-found,unused-ignore]

        return bytes(zstandard.ZstdCompressor().compress(body))
    raise ValueError(f"unsupported encoding {encoding!r}; expected one of {_ENCODINGS}")


def _split_evenly(data: bytes, parts: int) -> list[bytes]:
    if parts <= 1 or len(data) <= 1:
        return [data]
    parts = min(parts, len(data))
    size, extra = divmod(len(data), parts)
    out: list[bytes] = []
    pos = 0
    for i in range(parts):
        n = size + (1 if i < extra else 0)
        out.append(data[pos : pos + n])
        pos += n
    return out


def split_sse_events(body: bytes) -> list[bytes]:
    """Split an SSE body after each blank line; ``b"".join(result) == body`` always holds.

    Works with LF, CRLF and CR line endings. Extra blank lines stay with the preceding event.
    """
    pieces: list[bytes] = []
    current: list[bytes] = []
    for line in body.splitlines(keepends=True):
        if line in (b"\n", b"\r\n", b"\r"):
            if current:
                current.append(line)
                pieces.append(b"".join(current))
                current = []
            elif pieces:
                pieces[-1] += line
            else:
                current.append(line)
            continue
        current.append(line)
    if current:
        pieces.append(b"".join(current))
    return pieces or [body]


# --------------------------------------------------------------------------- server


class _Conn:
    """Buffered reader over a connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def read_until(self, sep: bytes, limit: int = _MAX_HEADER_BYTES) -> bytes | None:
        while sep not in self.buf:
            if len(self.buf) > limit or not self._fill():
                return None
        head, _, self.buf = self.buf.partition(sep)
        return head

    def read_exact(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self._fill():
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


class _Route:
    __slots__ = ("remaining", "response")

    def __init__(self, response: CannedResponse, times: int | None) -> None:
        self.response = response
        self.remaining = times


class ReplayServer:
    """HTTP/1.1 server on 127.0.0.1 that replays canned responses. Use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], list[_Route]] = {}
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self.requests: list[RecordedRequest] = []
        self.connections_accepted = 0
        self.url = ""

    # ---- lifecycle

    def start(self) -> Self:
        if self._listener is not None:
            return self
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((self._host, self._port))
        lsock.listen(128)
        lsock.settimeout(_POLL_S)
        self._listener = lsock
        self._stop.clear()
        port = lsock.getsockname()[1]
        self.url = f"http://{self._host}:{port}"
        self._accept_thread = threading.Thread(target=self._accept_loop, name="replay-accept", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=2)
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns)
            threads = list(self._threads)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join(timeout=2)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- routes

    def add(self, method: str, path: str, response: CannedResponse, *, times: int | None = None) -> None:
        """Queue ``response`` for ``method path`` (query ignored, repeated slashes collapsed).

        Responses for one (method, path) are served FIFO. ``times=N`` serves it N times;
        ``times=None`` serves it once, or forever while it is the last one queued.
        """
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        response.content_encoding  # noqa: B018 - validate early
        key = (method.upper(), normalize_path(path))
        with self._lock:
            self._routes.setdefault(key, []).append(_Route(response, times))

    def clear(self) -> None:
        """Forget every queued response and every recorded request."""
        with self._lock:
            self._routes.clear()
            self.requests.clear()

    def url_for(self, target: str) -> str:
        """``self.url`` + a path (query allowed)."""
        return self.url + (target if target.startswith("/") else "/" + target)

    def _take(self, method: str, target: str) -> CannedResponse | None:
        key = (method.upper(), normalize_path(target))
        with self._lock:
            queue = self._routes.get(key)
            if not queue:
                return None
            route = queue[0]
            if route.remaining is None:
                if len(queue) > 1:
                    queue.pop(0)
            else:
                route.remaining -= 1
                if route.remaining <= 0:
                    queue.pop(0)
            return route.response

    # ---- connection handling

    def _accept_loop(self) -> None:
        lsock = self._listener
        assert lsock is not None
        while not self._stop.is_set():
            try:
                sock, _ = lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._serve_conn, args=(sock,), name="replay-conn", daemon=True)
            with self._lock:
                if self._stop.is_set():
                    sock.close()
                    return
                self.connections_accepted += 1
                self._conns.add(sock)
                # finished threads are pruned here; stop() joins every thread still listed
                self._threads = {th for th in self._threads if th.is_alive()}
                self._threads.add(t)
            t.start()

    def _serve_conn(self, sock: socket.socket) -> None:
        conn = _Conn(sock)
        try:
            while not self._stop.is_set():
                if not self._handle_one(conn):
                    break
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _read_request(self, conn: _Conn) -> RecordedRequest | None:
        head = conn.read_until(b"\r\n\r\n")
        while head is not None and not head.lstrip(b"\r\n"):  # tolerate stray CRLFs between requests
            head = conn.read_until(b"\r\n\r\n")
        if head is None:
            return None
        head = head.lstrip(b"\r\n")
        lines = head.decode("iso-8859-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return None
        method, target, _version = parts
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers.append((name.strip(), value.strip()))
        req = RecordedRequest(method, target, headers, b"")
        if (req.header("expect") or "").lower() == "100-continue":
            conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        te = (req.header("transfer-encoding") or "").lower()
        if "chunked" in te:
            body = self._read_chunked_body(conn)
            if body is None:
                return None
            req.body = body
        else:
            length = int(req.header("content-length") or "0")
            body = conn.read_exact(length) if length else b""
            if body is None:
                return None
            req.body = body
        return req

    @staticmethod
    def _read_chunked_body(conn: _Conn) -> bytes | None:
        out = bytearray()
        while True:
            size_line = conn.read_until(b"\r\n")
            if size_line is None:
                return None
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, up to the blank line
                    trailer = conn.read_until(b"\r\n")
                    if trailer is None:
                        return None
                    if trailer == b"":
                        return bytes(out)
            data = conn.read_exact(size + 2)
            if data is None:
                return None
            out += data[:size]

    def _handle_one(self, conn: _Conn) -> bool:
        """Serve one request; return True to keep the connection open."""
        req = self._read_request(conn)
        if req is None:
            return False
        with self._lock:
            self.requests.append(req)
        response = self._take(req.method, req.path)
        if response is None:
            response = CannedResponse.json(
                404,
                {
                    "error": {
                        "code": "NoReplay",
                        "message": f"no canned response for {req.method} {normalize_path(req.path)}",
                    }
                },
            )
        client_close = "close" in (req.header("connection") or "").lower()
        return self._send(conn.sock, req, response, client_close)

    def _send(
        self, sock: socket.socket, req: RecordedRequest, resp: CannedResponse, client_close: bool
    ) -> bool:
        enc = resp.content_encoding
        pieces = resp.wire_pieces()
        no_body = req.method.upper() == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        headers = [
            (k, v)
            for k, v in resp.headers
            if k.lower() not in _FRAMING_HEADERS and not (enc and k.lower() == "content-encoding")
        ]
        if enc:
            headers.append(("Content-Encoding", enc))
        if not no_body:
            if resp.chunked:
                headers.append(("Transfer-Encoding", "chunked"))
            else:
                headers.append(("Content-Length", str(sum(len(p) for p in pieces))))
        cuts_short = resp.reset_after_chunks is not None or resp.hang_after_chunks is not None
        resp_close = any(k.lower() == "connection" and "close" in v.lower() for k, v in headers)
        close = client_close or resp_close or cuts_short
        if close and not resp_close and not cuts_short:
            headers.append(("Connection", "close"))
        try:
            reason = http.HTTPStatus(resp.status).phrase
        except ValueError:
            reason = "Unknown"
        head = f"HTTP/1.1 {resp.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        sock.sendall(head.encode("latin-1"))
        if no_body:
            return not close

        sent = 0
        for i, piece in enumerate(self._nonempty(pieces)):
            if i and resp.chunk_delay_s and self._stop.wait(resp.chunk_delay_s):
                return False  # server stopping
            if resp.chunked:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                sock.sendall(piece)
            sent += 1
            if resp.reset_after_chunks is not None and sent >= resp.reset_after_chunks:
                self._reset(sock)
                return False
            if resp.hang_after_chunks is not None and sent >= resp.hang_after_chunks:
                self._hang(sock)
                return False
        if resp.reset_after_chunks is not None and sent < resp.reset_after_chunks:
            self._reset(sock)  # fewer chunks than the cut point: drop before the terminator
            return False
        if resp.hang_after_chunks is not None and sent < resp.hang_after_chunks:
            self._hang(sock)
            return False
        if resp.chunked:
            sock.sendall(b"0\r\n\r\n")
        return not close

    @staticmethod
    def _nonempty(pieces: list[bytes]) -> Iterator[bytes]:
        return (p for p in pieces if p)

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        """Abort the connection with a TCP RST (SO_LINGER on, timeout 0)."""
        time.sleep(0.01)  # let the client read what was sent before the RST discards it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    def _hang(self, sock: socket.socket) -> None:
        """Send nothing more until the server stops or the client goes away."""
        while not self._stop.is_set():
            try:
                readable, _, _ = select.select([sock], [], [], _POLL_S)
                if readable and not sock.recv(65536):
                    return  # client closed
            except (OSError, ValueError):
                return


# --------------------------------------------------------------------------- cases


def case_response(
    case: Case,
    *,
    split: int | None = None,
    chunked: bool | None = None,
    chunk_delay_s: float = 0.0,
) -> CannedResponse:
    """The recorded response of ``case`` as a CannedResponse.

    SSE bodies are split into one chunk per event (or into ``split``-byte pieces) and sent chunked;
    other bodies go out in one piece with a Content-Length. Recorded Content-Length,
    Transfer-Encoding and Content-Encoding headers are dropped; a recorded Content-Encoding is
    re-applied by encoding the (decoded) body before it is sent.
    """
    headers = [(k, v) for k, v in case.response_headers.items() if k.lower() not in _RECOMPUTED_HEADERS]
    recorded_enc = next(
        (v.strip().lower() for k, v in case.response_headers.items() if k.lower() == "content-encoding"),
        None,
    )
    if recorded_enc in ("", "identity"):
        recorded_enc = None
    if split is not None:
        if split < 1:
            raise ValueError("split must be >= 1")
        chunks = [case.body[i : i + split] for i in range(0, len(case.body), split)] or [b""]
    elif case.is_sse:
        chunks = split_sse_events(case.body)
    else:
        chunks = [case.body]
    return CannedResponse(
        status=case.status,
        headers=headers,
        chunks=chunks,
        chunked=case.is_sse if chunked is None else chunked,
        chunk_delay_s=chunk_delay_s,
        encoding=recorded_enc,
    )


def serve_case(
    srv: ReplayServer,
    case: Case,
    *,
    split: int | None = None,
    times: int | None = None,
    chunked: bool | None = None,
    chunk_delay_s: float = 0.0,
) -> str:
    """Register ``case``'s response at its request method and path; return the URL to call."""
    srv.add(
        case.method,
        case.path,
        case_response(case, split=split, chunked=chunked, chunk_delay_s=chunk_delay_s),
        times=times,
    )
    return srv.url + case.path
