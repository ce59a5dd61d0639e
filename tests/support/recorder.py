"""A raw loopback HTTP server that answers ``200 ok`` to anything and records what reached it.

For attack tests: a second host the proxy must never reach, and an upstream whose
request lines show exactly what was forwarded. Raw sockets, so nothing between
the wire and the record normalises a path or a header.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Self


@dataclass(frozen=True)
class Seen:
    request_line: bytes
    head: bytes


class RecordingServer:
    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port: int = self._sock.getsockname()[1]
        self.seen: list[Seen] = []
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="recording-server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop = True
        self._sock.close()

    def _loop(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                piece = conn.recv(65536)
                if not piece:
                    return
                data += piece
            head = data.split(b"\r\n\r\n", 1)[0]
            self.seen.append(Seen(head.split(b"\r\n", 1)[0], head))
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n"
                         b"connection: close\r\n\r\nok")
        except OSError:
            pass
        finally:
            conn.close()


def raw_request(port: int, head: bytes, timeout: float = 10.0) -> bytes:
    """Send ``head`` (request line + headers + blank line, and any body) as is; return the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(head)
        answer = b""
        while True:
            try:
                piece = conn.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not piece:
                break
            answer += piece
            if b"\r\n\r\n" in answer:
                head_part, _, body = answer.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head_part.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(body) >= length:
                    break
        return answer
