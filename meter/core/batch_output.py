"""A Batch output file (``GET files/{id}/content``): JSON Lines, one answer per line, summed as they go by.

Each line is ``{"id": ..., "custom_id": ..., "response": {"status_code": 200, "body": {... "usage": {...}}},
"error": null}``; the body is a Chat Completions, Responses or embeddings answer, and its usage is read
with the mapping its keys name (``prompt_tokens``: chat; ``input_tokens``: Responses). The call's usage is
the field-wise sum over the lines. The batch object (``GET batches/{id}``) repeats these totals, so it is
never metered (see ``meter.core.route``): a batch is counted once, here.

Memory is bounded whatever the file's size (a Batch output file may hold gigabytes): one line is kept
at a time, up to ``MAX_LINE_BYTES``; a longer line is kept as its first and last ``KEEP_BYTES`` and read
from them (its status from the head, its usage from the tail, as ``meter.core.partial`` reads an SSE
event too big to keep). A line that cannot be read (not JSON, a success without a usage, counts that
are not counts) is left out of the sum and the rest is still summed: ``bad_lines`` counts them and
``first_error`` says what the first one was (the call counts one fault per file). A line that reports a
failed request (``error``, or a status of 400 and up) bills nothing and is no fault.

A file that is not a Batch output file (the batch's input file, fine-tuning data, a PDF) is recognised
on its first line and no longer read: no usage, no fault. Pure: no I/O.
"""

from __future__ import annotations

import json
import operator
from typing import Any

from meter.core import partial
from meter.core import usage as usage_mod
from meter.core.observe import Observation
from meter.core.record import USAGE_KINDS, Usage

MAX_LINE_BYTES = 8 * 1024 * 1024
"""A line longer than this is not kept whole (see the module docstring)."""
KEEP_BYTES = 64 * 1024
"""What is kept of the head and of the tail of a line longer than ``MAX_LINE_BYTES``."""

_NAMES = tuple(k.name for k in USAGE_KINDS)
_counts = operator.attrgetter(*_NAMES)


class BatchLineError(ValueError):
    """A line of a Batch output file that could not be read (left out of the sum)."""


def line_usage(usage: Any) -> Usage | None:
    """One answer's usage, with the mapping its keys name (chat and embeddings, else Responses)."""
    if type(usage) is dict and "prompt_tokens" in usage:
        return usage_mod.from_chat(usage)
    return usage_mod.from_responses(usage)


class BatchOutputReader:
    """Reads a Batch output file's bytes as they go by (``feed``), then ``finish`` puts the sum on the
    observation."""

    __slots__ = ("_head", "_over", "_pending", "_pending_size", "_tail", "bad_lines", "first_error",
                 "is_batch", "lines", "model", "stopped", "summed", "totals")

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._over = False
        self._head = b""
        self._tail = b""
        self.is_batch: bool | None = None
        """Decided on the first line: a Batch output file (``True``), or another file (``False``)."""
        self.stopped = False
        """Not a Batch output file: nothing more is read."""
        self.lines = 0
        self.summed = 0
        """Lines whose usage is in ``totals``."""
        self.bad_lines = 0
        self.first_error: BatchLineError | None = None
        self.totals = [0] * len(_NAMES)
        self.model: str | None = None
        """The model the first summed answer names (a batch runs one deployment)."""

    def feed(self, data: bytes) -> None:
        """The next bytes of the file (decoded), any size, lines cut anywhere."""
        if self.stopped:
            return
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                if start < len(data):
                    self._keep(data[start:] if start else data)
                return
            if self._pending_size or self._over:
                self._keep(data[start:end])
                self._end_line()
            else:
                self._line(data[start:end])
            if self.stopped:
                return
            start = end + 1

    def _keep(self, piece: bytes) -> None:
        """Part of a line whose end has not come yet."""
        if self._over:
            self._tail = (self._tail + piece[-KEEP_BYTES:])[-KEEP_BYTES:]
            return
        self._pending.append(piece)
        self._pending_size += len(piece)
        if self._pending_size > MAX_LINE_BYTES:
            line = b"".join(self._pending)
            self._head, self._tail = line[:KEEP_BYTES], line[-KEEP_BYTES:]
            self._pending = []
            self._pending_size = 0
            self._over = True

    def _end_line(self) -> None:
        if self._over:
            head, tail = self._head, self._tail
            self._over = False
            self._head = self._tail = b""
            self._oversized(head, tail)
            return
        line = b"".join(self._pending)
        self._pending = []
        self._pending_size = 0
        self._line(line)

    def finish(self, obs: Observation, at_end: bool) -> None:
        """The body is over: read a last line without a newline (only when the body was read to its end),
        and put the sum on ``obs`` (what was read, also when the download stopped early)."""
        if at_end and not self.stopped and (self._pending_size or self._over):
            self._end_line()
        self._pending = []
        if self.summed:
            obs.usage = Usage(**dict(zip(_NAMES, self.totals, strict=True)))
            obs.batch_model = self.model
        if at_end:
            obs.ended = True

    # -- one line ---------------------------------------------------------------------------------

    def _bad(self, why: str) -> None:
        self.bad_lines += 1
        if self.first_error is None:
            self.first_error = BatchLineError(f"Batch output line {self.lines}: {why}")

    def _first(self, looks_like_json: bool) -> bool:
        """Decide on the first line whether this is JSON Lines at all; ``False``: stop reading."""
        if self.is_batch is None:
            self.is_batch = looks_like_json
            self.stopped = not looks_like_json
        return not self.stopped

    def _line(self, line: bytes) -> None:
        if len(line) > MAX_LINE_BYTES:  # a whole body handed over at once: still read as a long line
            self._oversized(line[:KEEP_BYTES], line[-KEEP_BYTES:])
            return
        line = line.strip()
        if not line:
            return
        self.lines += 1
        if not self._first(line.startswith(b"{")):
            return
        first = self.lines == 1
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            self._bad(f"not JSON ({type(exc).__name__})")
            return
        if not isinstance(obj, dict):
            self._bad("not a JSON object")
            return
        if first and "response" not in obj and "error" not in obj:
            self.is_batch = False  # the batch's input file, fine-tuning data: JSON Lines with no answers
            self.stopped = True
            return
        response = obj.get("response")
        if not isinstance(response, dict):
            if obj.get("error") is not None:
                return  # a request that failed: it bills nothing
            self._bad("neither a response nor an error")
            return
        status = response.get("status_code")
        if type(status) is int and status >= 400:
            return  # an error answer bills nothing
        body = response.get("body")
        if not isinstance(body, dict):
            self._bad("a response without a body")
            return
        self._add(body.get("usage"), body.get("model"))

    def _oversized(self, head: bytes, tail: bytes) -> None:
        """A line longer than ``MAX_LINE_BYTES``: its status from the head, its usage from the tail."""
        self.lines += 1
        if not self._first(head.lstrip().startswith(b"{")):
            return
        fields = partial.leading_fields(head, into="response")
        response = fields.get("response")
        status = response.get("status_code") if isinstance(response, dict) else None
        if type(status) is int and status >= 400:
            return
        self._add(partial.last_object(tail, b"usage"), None)

    def _add(self, usage: Any, model: Any) -> None:
        read = line_usage(usage)
        if read is None:
            self._bad("no usage" if usage is None else "a usage that is not token counts")
            return
        totals = self.totals
        for i, count in enumerate(_counts(read)):
            totals[i] += count
        self.summed += 1
        if self.model is None and isinstance(model, str) and 0 < len(model) <= 200:
            self.model = model
