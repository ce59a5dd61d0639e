"""Batch: uploaded JSON Lines files, batch jobs, and their output files.

``POST files`` (``purpose=batch``) keeps a JSON Lines file; ``POST batches`` runs every line of
it at once, as if the job had already run (each line answered as chat, Responses or embeddings
would answer it, and billed in the ledger as ``operation: "batch"``), and keeps the output file
(``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`` per line, the
shape of the recorded output file) and an error file for lines that failed. The job reads
``validating`` when created, ``completed`` once ``EmulatorConfig.batch_delay_s`` has passed, with
its request counts and its usage totals (which repeat the output file's: only the file is metered).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from meter.apps.emulator import embeddings, errors
from meter.apps.emulator.chat import ChatAnswer
from meter.apps.emulator.config import EmulatorConfig
from meter.apps.emulator.generation import plan
from meter.apps.emulator.ledger import Ledger
from meter.apps.emulator.prompt import chat_prompt, embedding_inputs, responses_prompt
from meter.apps.emulator.responses import ResponseAnswer

ENDPOINTS = {"/chat/completions": "chat", "/v1/chat/completions": "chat", "/responses": "responses",
             "/v1/responses": "responses", "/embeddings": "embeddings", "/v1/embeddings": "embeddings"}
_USAGE_KEYS = ("input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "total_tokens")


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def object(self) -> dict[str, Any]:
        return {"object": "file", "id": self.id, "purpose": self.purpose, "filename": self.filename,
                "bytes": len(self.content), "created_at": self.created_at, "expires_at": self.created_at + 30 * 86400,
                "status": "processed", "status_details": None}


@dataclass
class Batch:
    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    metadata: dict[str, Any] | None
    output_file_id: str | None
    error_file_id: str | None
    counts: dict[str, int]
    usage: dict[str, Any]
    ready_at: float
    created_at: int = field(default_factory=lambda: int(time.time()))

    def object(self) -> dict[str, Any]:
        done = time.monotonic() >= self.ready_at
        at = self.created_at
        return {
            "cancelled_at": None, "cancelling_at": None, "completed_at": at + 1 if done else None,
            "completion_window": self.completion_window, "created_at": at,
            "error_file_id": self.error_file_id if done else None, "expired_at": None,
            "expires_at": at + 86400, "failed_at": None, "finalizing_at": at + 1 if done else None,
            "id": self.id, "in_progress_at": at, "input_file_id": self.input_file_id, "errors": None,
            "metadata": self.metadata, "object": "batch", "output_file_id": self.output_file_id if done else None,
            "request_counts": self.counts if done else {"total": self.counts["total"], "completed": 0, "failed": 0},
            "status": "completed" if done else "validating", "endpoint": self.endpoint,
            "usage": self.usage if done else None,
        }


class BatchStore:
    """Files and batch jobs (thread-safe; the oldest dropped beyond ``size`` each)."""

    def __init__(self, size: int = 256) -> None:
        self._lock = threading.Lock()
        self._size = size
        self.files: OrderedDict[str, StoredFile] = OrderedDict()
        self.batches: OrderedDict[str, Batch] = OrderedDict()

    def add_file(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        stored = StoredFile("file-" + uuid.uuid4().hex, filename, purpose, content)
        with self._lock:
            self.files[stored.id] = stored
            while len(self.files) > self._size:
                self.files.popitem(last=False)
        return stored

    def file(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self.files.get(file_id)

    def add_batch(self, batch: Batch) -> None:
        with self._lock:
            self.batches[batch.id] = batch
            while len(self.batches) > self._size:
                self.batches.popitem(last=False)

    def batch(self, batch_id: str) -> Batch | None:
        with self._lock:
            return self.batches.get(batch_id)


def run_lines(config: EmulatorConfig, ledger: Ledger, content: bytes,
              endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Answer every line of a batch input file: (output lines, error lines, usage totals); each
    answered line is billed in ``ledger``."""
    output: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    totals = dict.fromkeys(_USAGE_KEYS, 0)
    for raw in content.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            line = None
        custom_id = line.get("custom_id") if isinstance(line, dict) else None
        request_id = str(uuid.uuid4())
        status, body, api, usage, deployment = _answer(config, line, endpoint)
        entry = {"id": "batch_req_" + uuid.uuid4().hex, "custom_id": custom_id,
                 "response": {"status_code": status, "request_id": request_id, "body": body}, "error": None}
        if status != 200:
            failed.append(entry)
            continue
        output.append(entry)
        ledger.add({"deployment": deployment, "model": body.get("model"), "api": api, "operation": "batch",
                    "stream": False, "usage": usage, "service_tier": None, "status": 200, "request_id": request_id,
                    "at": time.time()})
        _add(totals, usage)
    return output, failed, {"input_tokens": totals["input_tokens"],
                            "input_tokens_details": {"cached_tokens": totals["cached_tokens"]},
                            "output_tokens": totals["output_tokens"],
                            "output_tokens_details": {"reasoning_tokens": totals["reasoning_tokens"]},
                            "total_tokens": totals["total_tokens"]}


def _answer(config: EmulatorConfig, line: Any, endpoint: str
            ) -> tuple[int, dict[str, Any], str, dict[str, Any], str | None]:
    """(status, body, api, usage, deployment) of one input line."""
    if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
        return (*errors.invalid_request("The line is not a JSON object with a body."), "", {}, None)
    body: dict[str, Any] = line["body"]
    api = ENDPOINTS.get(str(line.get("url", endpoint)))
    if api is None or ENDPOINTS.get(endpoint) != api:
        return (*errors.invalid_request(f"The url of the line must be the batch's endpoint {endpoint}.", "url"),
                "", {}, None)
    deployment = config.deployment(body.get("model") if isinstance(body.get("model"), str) else None)
    if deployment is None:
        return (*errors.deployment_not_found(), api, {}, None)
    if deployment.serves != ("embeddings" if api == "embeddings" else "text"):
        return (*errors.operation_not_supported(api, deployment.model), api, {}, deployment.name)
    if api == "embeddings":
        inputs = embedding_inputs(body)
        tokens = sum(max(1, len(text.split())) for text in inputs)
        answer = embeddings.body(deployment.model, inputs, tokens, str(body.get("encoding_format") or "float"))
        return 200, answer, api, answer["usage"], deployment.name
    limit = body.get("max_completion_tokens", body.get("max_tokens", body.get("max_output_tokens")))
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    if api == "chat":
        chat = ChatAnswer(deployment.model, plan(deployment, chat_prompt(body), limit))
        return 200, chat.body(), api, chat.usage(), deployment.name
    response = ResponseAnswer(deployment.name, deployment.reasoning, plan(deployment, responses_prompt(body), limit),
                              body)
    return 200, response.response(response.final_status), api, response.usage(), deployment.name


def _add(totals: dict[str, int], usage: dict[str, Any]) -> None:
    """Chat, Responses and embeddings usage into the batch object's (Responses-named) totals."""
    inp = usage.get("input_tokens", usage.get("prompt_tokens", 0))
    out = usage.get("output_tokens", usage.get("completion_tokens", 0))
    details_in = usage.get("input_tokens_details") or usage.get("prompt_tokens_details") or {}
    details_out = usage.get("output_tokens_details") or usage.get("completion_tokens_details") or {}
    totals["input_tokens"] += inp
    totals["output_tokens"] += out
    totals["cached_tokens"] += details_in.get("cached_tokens", 0)
    totals["reasoning_tokens"] += details_out.get("reasoning_tokens", 0)
    totals["total_tokens"] += usage.get("total_tokens", inp + out)


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)
