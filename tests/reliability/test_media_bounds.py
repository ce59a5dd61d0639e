"""Audio uploads and Batch output files: the caller's bytes untouched, memory bounded, bad input a counted fault.

A 25 MB multipart upload goes through a real socket to a server that hashes what it receives; a Batch
output file of hundreds of megabytes (and one endless line) is read as it goes by. Memory is the
process's peak resident size during the call, metered against the same call unmetered.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest

import meter
from meter.core import batch_output
from tests.support.memory import peak_kib, rss_kib

MB = 1024 * 1024
TRANSCRIPTION = (b'{"text":"hello","usage":{"type":"tokens","input_tokens":17,"input_token_details":'
                 b'{"audio_tokens":17,"text_tokens":0},"output_tokens":11,"total_tokens":28}}')
BOUNDARY = "meter-test-boundary"


class HashingServer:
    """HTTP/1.1 on loopback: reads a request body (Content-Length or chunked) into a hash, never keeps it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[tuple[int, str]] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            f = conn.makefile("rb")
            while True:
                line = f.readline()
                if not line:
                    return
                headers: dict[str, str] = {}
                while (h := f.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                digest, size = hashlib.sha256(), 0
                if "content-length" in headers:
                    left = int(headers["content-length"])
                    while left:
                        piece = f.read(min(left, 65536))
                        digest.update(piece)
                        size += len(piece)
                        left -= len(piece)
                elif headers.get("transfer-encoding") == "chunked":
                    while (n := int(f.readline().split(b";")[0], 16)):
                        while n:
                            piece = f.read(min(n, 65536))
                            digest.update(piece)
                            size += len(piece)
                            n -= len(piece)
                        f.readline()
                    f.readline()
                self.received.append((size, digest.hexdigest()))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(TRANSCRIPTION)).encode() + b"\r\n\r\n" + TRANSCRIPTION)

    def close(self) -> None:
        self.sock.close()


def _upload_parts(size: int) -> Iterator[bytes]:
    """A multipart body: the model field, then ``size`` bytes of audio in 64 KiB pieces (made as sent)."""
    yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o-mini-transcribe\r\n'
           f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
           f"Content-Type: audio/wav\r\n\r\n").encode()
    piece = bytes(range(256)) * 256
    for _ in range(size // len(piece)):
        yield piece
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _expected(size: int) -> tuple[int, str]:
    digest, n = hashlib.sha256(), 0
    for part in _upload_parts(size):
        digest.update(part)
        n += len(part)
    return n, digest.hexdigest()


def _send(stack: Any, transport: Any, url: str, content: Any, m: meter.Meter | None = None) -> tuple[float, bytes]:
    """Send the upload; the peak of what Python allocated meanwhile (MB), with the metering worker's work
    for the call (flushed inside the measured region), and the answer. ``tracemalloc`` rather than the
    process's peak RSS: a high-water mark that earlier tests set, and memory handed back to the system
    between two sends, made that figure move by ±15 MB from run to run."""
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with stack.Client(transport=transport, timeout=60) as client:
            body = client.post(url, content=content, headers=headers).content
        if m is not None:
            m.flush()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - base) / MB, body


@pytest.fixture
def hashing_server() -> Iterator[HashingServer]:
    srv = HashingServer()
    yield srv
    srv.close()


SENDS = 3
SMALL_SEND_BUFFER = [(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)]
"""httpx (legacy) writes a body with ``buffer = buffer[n:]`` after each partial ``send``: a copy of what is
left, so a send's peak is the body plus what the kernel did not take at once, and with the socket's send
buffer autotuned (up to ``tcp_wmem``, 4 MB) that moved the unmetered peak by up to 12 MB from send to send
on a busy host (26.0 to 38.3 MB in-memory; a CI run failed at +3.7 MB). A fixed small send buffer makes the
kernel take about the same each time, for both sides alike."""


@pytest.mark.parametrize("stack", [httpx, httpx2], ids=["httpx", "httpx2"])
@pytest.mark.parametrize("in_memory", [False, True], ids=["streamed", "in-memory"])
def test_a_25_mb_upload_passes_untouched_with_bounded_memory(stack: Any, in_memory: bool,
                                                            hashing_server: HashingServer,
                                                            figures: dict[str, object]) -> None:
    size = 25 * MB
    url = f"http://127.0.0.1:{hashing_server.port}/openai/v1/audio/transcriptions"
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)
    content: Any = b"".join(_upload_parts(size)) if in_memory else None
    # Three sends a side, each side's least peak: the unmetered send's own peak moves by ±2.5 MB from send to
    # send (httpx's buffers), more than the bound; a copy of the body meter made would be in every send.
    raw_mb = metered_mb = float("inf")
    for _ in range(SENDS):
        peak, raw_body = _send(stack, stack.HTTPTransport(socket_options=SMALL_SEND_BUFFER), url,
                               content or _upload_parts(size))
        raw_mb = min(raw_mb, peak)
        peak, body = _send(stack, meter.MeteredTransport(stack.HTTPTransport(socket_options=SMALL_SEND_BUFFER), m),
                           url, content or _upload_parts(size), m)
        metered_mb = min(metered_mb, peak)
    assert hashing_server.received == [_expected(size)] * 2 * SENDS, "the upload must arrive byte for byte"
    assert body == raw_body == TRANSCRIPTION
    assert len(records) == SENDS
    record = records[-1]
    assert record.api == "transcriptions" and record.usage is not None and record.usage.audio_input_tokens == 17
    # the model field is read from an upload already in memory (its head only), never from a streamed one
    assert record.request_model == ("gpt-4o-mini-transcribe" if in_memory else None)
    assert not m.faults
    figures[f"upload 25 MB {stack.__name__} {'in-memory' if in_memory else 'streamed'}: peak MB"] = (
        f"unmetered {raw_mb:.1f}, metered {metered_mb:.1f}")
    assert metered_mb - raw_mb < 3, f"+{metered_mb - raw_mb:.1f} MB for a 25 MB upload"


# -- Batch output files -----------------------------------------------------------------------------

LINE = json.dumps({"id": "batch_req_1", "custom_id": "0", "response": {"status_code": 200, "request_id": "r",
                   "body": {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": "x" * 600},
                                         "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 12, "completion_tokens": 150, "total_tokens": 162}}},
                   "error": None}).encode() + b"\n"
FILE_URL = "https://res.openai.azure.com/openai/files/file-abc/content?api-version=2025-04-01-preview"


class Lines(httpx2.SyncByteStream):
    def __init__(self, total: int, endless_line: int = 0, bad_every: int = 0) -> None:
        self.total, self.endless_line, self.bad_every = total, endless_line, bad_every

    def __iter__(self) -> Iterator[bytes]:
        block = LINE * 64
        sent = 0
        n = 0
        if self.endless_line:  # one line with no end in sight: then the file goes on as usual
            yield LINE[:200]
            filler = b"x" * 65536
            for _ in range(self.endless_line // len(filler)):
                yield filler
            yield b'"}}, "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}}}\n'
        while sent < self.total:
            n += 1
            yield b"not json at all\n" if self.bad_every and n % self.bad_every == 0 else block
            sent += len(block)


class Files(httpx2.BaseTransport):
    def __init__(self, **kwargs: int) -> None:
        self.kwargs = kwargs

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "application/octet-stream"},
                               stream=Lines(**self.kwargs))


def _download(transport: Any) -> tuple[float, float, int, str]:
    base = rss_kib()
    t0 = time.perf_counter()
    read = 0
    digest = hashlib.sha256()
    with httpx2.Client(transport=transport) as client:
        with client.stream("GET", FILE_URL) as response:
            for chunk in response.iter_raw():
                read += len(chunk)
                digest.update(chunk)
    return (peak_kib() - base) / 1024, time.perf_counter() - t0, read, digest.hexdigest()


@pytest.mark.parametrize(("name", "kwargs"), [
    ("200 MB of lines", {"total": 200 * MB}),
    ("a 100 MB line, then 20 MB", {"total": 20 * MB, "endless_line": 100 * MB}),
    ("20 MB with a line in 500 not JSON", {"total": 20 * MB, "bad_every": 500}),
])
def test_a_huge_output_file_is_summed_in_bounded_memory(name: str, kwargs: dict[str, int],
                                                        figures: dict[str, object]) -> None:
    records: list[meter.CallRecord] = []
    m = meter.Meter(on_record=records.append, otel=False, prometheus=False, price_book=False)
    raw_mb, raw_s, raw_read, raw_hash = _download(Files(**kwargs))
    metered_mb, metered_s, read, digest = _download(meter.MeteredTransport(Files(**kwargs), meter=m))
    assert (read, digest) == (raw_read, raw_hash), "the caller must get the file's bytes unchanged"
    assert m.flush(30)  # the record comes on the metering worker
    (record,) = records
    assert record.api == "batch_output" and record.outcome == "ok" and record.usage is not None
    blocks = -(-kwargs["total"] // (len(LINE) * 64))
    bad = blocks // kwargs["bad_every"] if kwargs.get("bad_every") else 0
    lines = (blocks - bad) * 64 + (1 if kwargs.get("endless_line") else 0)
    assert record.usage.input_tokens == (blocks - bad) * 64 * 12 + (1 if kwargs.get("endless_line") else 0)
    assert record.usage.output_tokens == (blocks - bad) * 64 * 150 + (1 if kwargs.get("endless_line") else 0)
    assert m.faults == ({"batch_line": 1} if bad else {}), "bad lines: one fault a file"
    figures[f"batch output {name}: peak MB, s"] = (
        f"unmetered {raw_mb:.1f} MB {raw_s:.2f}s, metered {metered_mb:.1f} MB {metered_s:.2f}s, {lines} lines")
    assert metered_mb - raw_mb < batch_output.MAX_LINE_BYTES / MB + 8, f"+{metered_mb - raw_mb:.1f} MB"
