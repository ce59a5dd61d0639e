"""One metered call from request to its end: the state machine every adapter drives.

Adapters (httpx / httpx2, sync / async) only translate their stack's objects
into the calls below: ``on_response`` when headers arrive, ``on_chunk`` per raw
body chunk, then exactly one of ``on_end`` (body exhausted), ``on_close``
(caller closed the body), ``on_error`` (the inner transport raised, or the task
was cancelled). Whichever of those comes first builds the call's ``CallEnd``
and hands it, with the ``CallStart``, to the ``CallOutput`` the call was made
with, exactly once; later ones are no-ops.

The state machine knows nothing of ``Meter``, sinks or pricing: its only way
out is the small ``CallOutput`` protocol it defines. Every method here swallows
its own exceptions (reporting them as metering faults): a bug in meter must
never reach the caller.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol

from meter.core import batch_output, observe, observe_media, sse, tools
from meter.core.decode import DecodedTooLarge, Decoder, decoder_for
from meter.core.faults import FaultKind, Guard
from meter.core.headers import RawHeaders, azure_headers
from meter.core.record import MEDIA_APIS, AzureHeaders, Outcome, Usage, UsageSource
from meter.core.sse import SSEScanner
from meter.core.start import CallStart

HELD_BYTES = 1 << 20
"""Steady-state chunks are held by reference until the call's end is built (on the metering worker), where
they are looked at together; past this many bytes held, the caller's thread looks at them at once, so a
long stream holds at most this much (see ``Call.on_chunk``)."""
MAX_JSON_BODY_BYTES = 32 * 1024 * 1024
"""Non-streaming bodies larger than this (decoded) are passed through but not parsed (a fault is counted)."""


class _StopReading(Exception):
    """Raised inside a decoder's output to stop decoding a body meter no longer reads."""


class CallEnd(NamedTuple):
    """What the state machine saw of a call, from response head to its end."""

    status_code: int | None
    outcome: Outcome
    error_type: str | None
    error_code: str | None
    usage: Usage | None
    usage_source: UsageSource | None
    finish_reasons: tuple[str, ...] | None
    duration_s: float
    time_to_first_token_s: float | None
    azure: AzureHeaders
    response_model: str | None
    response_id: str | None
    stream: bool
    provisional: bool
    output_text: tuple[str, ...] | None
    """The completion text, only when the start says ``capture``."""
    service_tier: str | None = None
    """The tier the service says served the call (the body, else the ``x-ms-service-tier`` header)."""
    containers: tuple[str, ...] = ()
    """The code interpreter containers the call used (the hub counts each once across calls)."""
    audio_seconds: float | None = None
    """Seconds of audio the service said it transcribed or translated (whisper)."""
    images: int | None = None
    """Images the service returned."""
    batch_model: str | None = None
    """The model a Batch output file's answers name (priced as; the file has no ``response_model``)."""


class CallOutput(Protocol):
    """Where a call's end goes: once ``ended``, and ``fault`` for each metering fault on the way
    (``guard[kind]`` around a block reports what it raises as one).

    ``ended`` is told that the call is over; it then has ``call.complete(exc, duration)`` build the end,
    at once or later on another thread (the hub's metering worker): once a call has ended nothing changes
    its state but ``complete``, so when that runs does not change what it builds."""

    @property
    def guard(self) -> Mapping[FaultKind, Guard]: ...

    def ended(self, call: Call, exc: BaseException | None, duration_s: float) -> None: ...

    def later(self, job: Callable[[], None]) -> bool:
        """Run ``job`` (reading held chunks) where the call's end will be built, in order with it; ``False``
        when that is the caller's own thread (the call then runs it now)."""
        ...

    def fault(self, kind: FaultKind, exc: BaseException) -> None: ...


class Headers(Protocol):
    """The part of httpx/httpx2 request ``Headers`` meter uses (case-insensitive ``get``)."""

    def get(self, key: str, /) -> str | None: ...


_EMPTY_HEADERS = AzureHeaders()


class Call:
    """State of one metered call. Made by the hub with its ``CallStart``; driven by an adapter."""

    # Per-call state, each starting at its class default: a call sets only what it changes, so making one
    # (on the caller's thread, per request) is a few assignments, not thirty.
    status_code: int | None = None
    _ttft: float | None = None
    _headers: RawHeaders | None = None
    """The response head, read into ``AzureHeaders`` when the end is built (off the caller's thread)."""
    _sse = False
    _sniff = False
    _decoder: Decoder | None = None
    _scanner: SSEScanner | None = None
    _observer: (observe.ChatStreamObserver | observe.ResponsesStreamObserver
                | observe_media.MediaStreamObserver | None) = None
    _lines: batch_output.BatchOutputReader | None = None
    """A Batch output file's line reader (``GET files/{id}/content``)."""
    _body: list[bytes] | None = None
    _body_size = 0
    _broken = False
    _skip = False
    """No more chunks to look at (broken, or the end is out)."""
    _feed: Callable[[bytes], None] | None = None
    _take: Callable[[bytes], bool] | None = None
    """The observer's one-chunk-one-delta fast path (streams only)."""
    _take_run: Callable[[list[bytes]], int] | None = None
    """The same for a list of held chunks at once: how many leading ones it counted (``delta_runs``)."""
    _held: list[bytes] | None = None
    """Chunks not looked at yet (steady state only; see ``on_chunk``)."""
    _held_bytes = 0
    _run: dict[int, bytes] | None = None
    """Chunks a sync stream passed in its current run, kept as they went by (see ``run_store``)."""
    _eof = False
    _untracked = False
    _done = False
    _reading = False
    """A chunk is being read right now (see ``_wait_for_reader``)."""
    _observation: observe.Observation | None = None

    @property
    def obs(self) -> observe.Observation:
        """What the body has said so far; made when first needed (a JSON body: when the end is built)."""
        found = self._observation
        if found is None:
            found = self._observation = observe.Observation()
        return found

    def __init__(self, start: CallStart, out: CallOutput) -> None:
        self.start = start
        """What the call is. Its output may give it the finished start once, before it reads the call's
        chunks or builds its end (the hub's metering worker finishes a start off the caller's thread);
        what the caller's thread reads of it (the route's api and operation, ``capture``, a stream's
        request facts) is the same in both."""
        self._out = out
        self._t0 = time.perf_counter()
        self._ending = [True]
        """One token, taken by the first ending (``list.pop`` is atomic: no lock to make per call)."""

    # -- events from the adapter ------------------------------------------------------------

    def on_response(self, status_code: int, headers: RawHeaders) -> None:
        """Status and headers arrived; choose how the body will be read (the rest of the head is read later)."""
        with self._out.guard["response_headers"]:
            self.status_code = status_code
            self._headers = headers
            content_type, content_encoding = headers.reading_fields()
            content_type = (content_type or "").split(";", 1)[0].strip().lower()
            try:
                self._decoder = decoder_for(content_encoding)
            except ValueError as exc:  # an encoding meter cannot undo: the body is not read at all
                self._sse = content_type == "text/event-stream"
                self._stop_reading()
                self._fault("content_encoding", exc)
                return
            if (self.start.route.api in MEDIA_APIS and status_code < 400 and content_type != "text/event-stream"
                    and self._media_body(content_type)):
                return
            if content_type == "text/event-stream":
                self._start_sse()
            elif content_type:
                self._body = []
            else:
                self._sniff = True  # no Content-Type: decide on the first bytes

    def _media_body(self, content_type: str) -> bool:
        """Audio, images, Batch output: ``True`` when how their body is read is decided here (else as JSON).

        A Batch output file is read line by line as it goes by (never held whole); binary audio and
        text transcripts are passed through unread (they carry no usage: unknown, no fault)."""
        if self.start.route.api == "batch_output":
            self._lines = batch_output.BatchOutputReader()
            self._feed = self._lines.feed
            return True
        if content_type and not observe_media.is_json(content_type):
            self._skip = True
            return True
        return False

    def _start_sse(self) -> Callable[[bytes], None]:
        """Read the body as an event stream from now on; returns the function that feeds it."""
        self._sse = True
        self._scanner = SSEScanner()
        capture = self.start.capture
        api = self.start.route.api
        if api == "responses":
            self._observer = observe.ResponsesStreamObserver(self.obs, self._first_token, self._scanner, capture)
        elif api in MEDIA_APIS:
            self._observer = observe_media.MediaStreamObserver(self.obs, self._first_token, self._scanner)
        else:
            self._observer = observe.ChatStreamObserver(self.obs, self._first_token, self._scanner, capture,
                                                        single_choice=self.start.info.choices == 1)
        self._scanner.on_oversized = self._observer.on_oversized
        scanner, on_event = self._scanner, self._observer.on_event

        def feed(data: bytes) -> None:
            scanner.feed(data, on_event)

        self._feed = feed
        if self._decoder is None:  # the fast path reads raw bytes; encoded bodies take the scanner
            self._take = self._observer.take
            self._take_run = self._observer.take_run
        return feed

    def on_chunk(self, chunk: bytes) -> None:
        """One raw body chunk, exactly as the caller receives it. Runs per chunk: kept lean.

        Until a stream is in its steady state (plain deltas: ``holding``), each chunk is looked at
        as it passes: the head says the call's identity and its first token's time. From then on a
        chunk is only held, by reference: the held chunks are looked at when the call's end is
        built, with the same checks in the same order, on the metering worker (where the record is
        made): a run of plain deltas is counted at once (``_look_all``, ``delta_runs``). Looking at
        each one between the SDK's own work cost 2.8-4 µs a chunk in place (the harness's S2: 1.06x
        of the raw stream with no worker at all), holding costs an append. Past ``HELD_BYTES`` held,
        the caller's thread looks at them at once (or the output runs them elsewhere, in order with
        the end: ``CallOutput.later``; the hub's does not, see ``_Pending.later``), so holding stays
        bounded.
        """
        self._reading = True  # before the test of _skip; _finish sets _skip, then waits while this is set
        if self._skip:
            self._reading = False
            return
        held = self._held
        if held is not None:
            held.append(chunk)
            size = self._held_bytes = self._held_bytes + len(chunk)
            if size <= HELD_BYTES:
                self._reading = False
                return
            self._look_now(held)
            return
        try:
            self._look(chunk)
        finally:
            self._reading = False

    @property
    def holding(self) -> bool:
        """In the steady state: chunks are only held from now on (``on_chunk``, ``end_run``)."""
        return self._held is not None

    def run_store(self) -> dict[int, bytes]:
        """Where a sync stream keeps the chunks of a run as they pass, steady state only.

        The stream passes each chunk on through ``dict.setdefault`` under a key never used before
        (so it returns the very chunk it stores): no Python code of meter's runs per chunk. The call
        reads this store when its end is built, so a run cut short by an ending on another thread is
        still seen; ``end_run`` moves a finished run to the held chunks."""
        run = self._run
        if run is None:
            run = self._run = {}
        return run

    def end_run(self) -> None:
        """A run of chunks has passed (``run_store``): they join the held chunks, looked at with them."""
        run = self._run
        if not run:
            return
        self._reading = True  # the same handshake as ``on_chunk``: the end waits for this
        if self._skip:  # the call ended meanwhile: its end read the store (or will)
            self._reading = False
            return
        chunks = list(run.values())
        run.clear()
        held = self._held
        if held is None:  # not steady (a fault stopped the reading): nothing more is looked at
            self._reading = False
            return
        held.extend(chunks)
        size = self._held_bytes = self._held_bytes + sum(map(len, chunks))
        if size <= HELD_BYTES:
            self._reading = False
            return
        self._look_now(held)

    def _look_now(self, held: list[bytes]) -> None:
        """More than ``HELD_BYTES`` are held: look at them now (or where the output says), and hold anew."""
        self._held = []
        self._held_bytes = 0
        try:
            if not self._out.later(lambda: self._look_all(held)):
                self._look_all(held)
        finally:
            self._reading = False

    def _look(self, chunk: bytes) -> None:
        """Read one chunk into the call's state; a fault stops reading (and is counted), never raises."""
        try:
            take = self._take
            if take is not None and take(chunk):
                if self._held is None:
                    self._held = []  # steady state: hold the next chunks and look at them in batches
                return
            if self._decoder is not None:
                self._decoder.decode(chunk, self._consume)  # in bounded pieces
            elif self._feed is not None:
                self._feed(chunk)
            else:
                self._on_body_chunk(chunk)
        except _StopReading:
            pass
        except DecodedTooLarge as exc:
            self._stop_reading()
            self._fault("decoded_too_large", exc)
        except Exception as exc:
            self._stop_reading()
            self._fault("parse", exc)

    def _look_all(self, held: list[bytes]) -> None:
        """Held chunks, in order: a leading run of steady deltas counted at once (``take_run``: a few C-level
        passes, not a Python call per chunk), then the rest one by one; a fault stops the reading.

        The caller's closing the body meanwhile does not stop them: the caller has seen them all."""
        done = 0
        take_run = self._take_run
        if take_run is not None and not self._broken:
            with self._out.guard["parse"]:  # a fault here changed nothing: the chunks are read one by one
                done = take_run(held)
        for piece in itertools.islice(held, done, None):
            if self._broken:
                break
            self._look(piece)

    def _look_at_held(self) -> None:
        """The chunks still held, and those of a run not moved yet, read before the end is built (the caller
        has seen them all). The run is copied in one step: its stream may still be adding to it."""
        held = self._held
        run = self._run
        if run:
            held = [*(held or ()), *list(run.values())]
        if held:
            self._look_all(held)
        self._held = self._run = None

    def _stop_reading(self) -> None:
        """Nothing more is read from this body: its usage stays unknown (``None``), never guessed."""
        self._skip = True
        self._broken = True
        self._body = None

    def _consume(self, data: bytes) -> None:
        """Decoded body bytes (a piece of a chunk)."""
        if self._skip:
            raise _StopReading
        if self._feed is not None:
            self._feed(data)
        else:
            self._on_body_chunk(data)

    def _on_body_chunk(self, data: bytes) -> None:
        if self._sniff:
            head = data.lstrip()
            if not head:
                return
            self._sniff = False
            if head.startswith((b"data:", b"event:", b":")):
                self._start_sse()(data)
                return
            self._body = []
        if self._body is not None:
            self._body_size += len(data)
            if self._body_size > MAX_JSON_BODY_BYTES:
                self._stop_reading()
                self._fault("body_too_large", ValueError(f"a JSON body over {MAX_JSON_BODY_BYTES} bytes"))
                raise _StopReading
            self._body.append(data)

    def on_end(self) -> None:
        """The body was read to its end."""
        self._eof = True
        self._finish(None)

    def on_close(self) -> None:
        """The caller closed the body (maybe before its end: then the call was aborted)."""
        self._finish(None)

    def on_untracked(self, exc: BaseException) -> None:
        """The adapter could not follow the response (a fault, counted): record what is known now.

        The caller gets the response untouched; its body is never seen, so usage is unknown.
        """
        self._fault("attach", exc)
        self._untracked = True
        self._stop_reading()
        self._finish(None)

    def on_error(self, exc: BaseException) -> None:
        """The inner transport raised, or the caller's task was cancelled or closed the iterator."""
        self._finish(exc)

    # -- internals --------------------------------------------------------------------------

    def _first_token(self) -> None:
        if self._ttft is None:
            self._ttft = time.perf_counter() - self._t0

    def _fault(self, kind: FaultKind, exc: BaseException) -> None:
        self._out.fault(kind, exc)

    @property
    def finished(self) -> bool:
        """The end was built (or is being built): later endings are no-ops."""
        return self._done

    def _finish(self, exc: BaseException | None) -> None:
        # The end of a stream, a close from another thread and a finalised response may race: the one
        # token is popped by exactly one of them (an atomic step), which tells the output, once.
        # The end itself is built by ``complete``, when the output runs it.
        duration = time.perf_counter() - self._t0
        try:
            self._ending.pop()
        except IndexError:  # another ending came first
            return
        self._done = True
        self._skip = True
        self._out.ended(self, exc, duration)

    def complete(self, exc: BaseException | None, duration_s: float) -> CallEnd | None:
        """Build the call's end from what it saw (``None`` if that failed: a fault, no record).

        Run once, by the output the call ended into, after ``on_end`` / ``on_close`` / ``on_error``. A
        chunk another thread is still reading is waited for, so the end is built from a state no chunk
        is changing.
        """
        self._wait_for_reader()
        end = None
        with self._out.guard["record"]:  # a bug building the end: no record, and the caller goes on
            try:
                self._look_at_held()
                end = self._build(exc, duration_s)
            finally:
                # The stream readers point back at this call (the first-token callback) and at each
                # other (scanner <-> observer): cut both, so a finished call is freed by reference
                # counting, not left for the cyclic collector.
                if self._scanner is not None:
                    self._scanner.on_oversized = None
                self._observer = self._scanner = self._feed = self._take = self._take_run = self._decoder = None
        return end

    def _wait_for_reader(self) -> None:
        """Let a chunk that another thread is reading finish before the end is built from the state.

        No lock per chunk (that cost a third of the per-chunk time): ``on_chunk`` sets ``_reading``
        before it tests ``_skip``, and this runs after ``_skip`` is set, so either the chunk sees
        ``_skip`` and stops, or this sees ``_reading`` and waits (the interpreter orders the two
        threads' reads and writes). Bounded: a reader stuck for a second is not waited for.
        """
        if not self._reading:
            return
        deadline = time.monotonic() + 1.0
        while self._reading and time.monotonic() < deadline:
            time.sleep(0.0001)

    def _read_body(self) -> None:
        """Parse a complete non-streaming body (success JSON or error JSON)."""
        if self._body is None or self._broken or self.status_code is None:
            return
        body = b"".join(self._body)
        self._body = None
        if not body.strip():
            return
        api = self.start.route.api
        read = observe_media.read_json_body if api in MEDIA_APIS else observe.read_json_body
        with self._out.guard["parse"]:
            read(api, self.status_code, body, self.obs, capture=self.start.capture)

    def _end_lines(self, lines: batch_output.BatchOutputReader) -> None:
        """A Batch output file is over (or stopped): its sum goes on the observation; bad lines, one fault."""
        with self._out.guard["parse"]:
            lines.finish(self.obs, self._eof and not self._broken)
        if lines.first_error is not None:
            self._fault("batch_line", lines.first_error)

    def _flush_stream(self) -> None:
        if self._scanner is None or self._observer is None or self._broken:
            return
        with self._out.guard["parse"]:
            for event in self._scanner.flush():
                self._observer.on_event(event)

    def _outcome(self, exc: BaseException | None) -> tuple[Outcome, str | None]:
        obs = self.obs
        if exc is not None:
            if not isinstance(exc, GeneratorExit | asyncio.CancelledError | KeyboardInterrupt):
                return "transport_error", type(exc).__name__
            if not obs.ended:
                return "aborted", type(exc).__name__
            # The caller stopped iterating (or was cancelled) after the end marker: the outcome
            # follows what the stream delivered, not how its iterator was closed.
        status = self.status_code
        if status is not None and status >= 400:
            return "http_error", obs.error_kind or str(status)
        if self._untracked:  # the body went to the caller unseen: as far as meter knows, it went fine
            return "ok", None
        if obs.failed:
            return "http_error", obs.error_kind or "error"
        if not self._eof and not obs.ended:
            # Closed before the end. A stream whose end marker ([DONE], a terminal
            # Responses event) was seen is complete even if the caller stopped there.
            return "aborted", None
        if obs.status == "incomplete":
            return "incomplete", obs.incomplete_reason
        if self._sse and not obs.ended and not obs.finish_reasons:
            return "incomplete", "stream_ended_early"
        return "ok", None

    def _usage(self, outcome: Outcome) -> tuple[Usage | None, UsageSource | None]:
        obs = self.obs
        if obs.usage is not None:
            return obs.usage, "stream" if self._sse else "response"
        status = self.status_code
        if self._broken:  # meter stopped reading (a fault, a cap): what it did not see is unknown
            return None, None
        if not self._sse or status is None or status >= 400 or obs.failed:
            return None, None
        if self.start.route.operation != "create" or self.start.route.api in MEDIA_APIS:
            return None, None  # a retrieve/resume, audio or images that saw no usage: nothing to estimate
        # A stream the service accepted but whose usage never came (old api-version without
        # include_usage, stream cut short): estimate, and say so.
        output = obs.content_events
        input_tokens = self.start.input_estimate
        return Usage(input_tokens=input_tokens, output_tokens=output,
                     total_tokens=input_tokens + output), "estimated"

    def _build(self, exc: BaseException | None, duration: float) -> CallEnd:
        if self._sse:
            if self._eof:
                self._flush_stream()
            scanner = self._scanner
            if scanner is not None and scanner.overflowed:  # read from its head and tail only: say so
                self._fault("event_too_large", ValueError(
                    f"{scanner.overflowed} SSE event(s) over {sse.MAX_EVENT_BYTES} bytes"))
        elif self._lines is not None:
            self._end_lines(self._lines)
        elif self._eof:
            self._read_body()
        outcome, error_type = self._outcome(exc)
        usage, source = self._usage(outcome)
        obs = self.obs
        azure = _EMPTY_HEADERS
        if self._headers is not None:
            with self._out.guard["response_headers"]:
                azure = azure_headers(self._headers)
        usage, containers = tools.counted(usage, obs.tools, self.start.route.api,
                                          obs.response_model or azure.served_model)
        start = self.start
        route = start.route
        failed_body = not self._sse and ((self.status_code or 0) >= 400 or obs.failed)
        response_id = obs.response_id or route.response_id
        provisional = (source == "estimated" and start.info.background and route.api == "responses"
                       and route.operation == "create" and response_id is not None)
        return CallEnd(
            self.status_code,
            outcome,
            error_type,
            obs.error_code if outcome == "http_error" else None,
            usage,
            source,
            None if failed_body else obs.finish_list(route.api),
            duration,
            self._ttft if self._sse else None,
            azure,
            obs.response_model or azure.served_model,
            response_id,
            self._sse,
            provisional,
            tuple(obs.output_text) if start.capture and obs.output_text else None,
            obs.service_tier or azure.service_tier,
            containers,
            obs.audio_seconds,
            obs.images,
            obs.batch_model,
        )
