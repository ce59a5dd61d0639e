"""Each Responses id's usage counted once, however often the response is retrieved or resumed.

A background Responses call can be streamed, dropped, resumed and retrieved:
several HTTP attempts carry the same id and the same usage. The first record
with the service's usage for an id counts it; later ones are marked ``repeat``
and carry no usage. An estimate never counts as an id's usage; a provisional one
(a background create whose stream dropped) is remembered, so the service's usage
for that id, when it comes, says it supersedes the estimate. Bounded memory: the
last ``size`` ids.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import NamedTuple

from meter.core.record import Usage, UsageSource


class Verdict(NamedTuple):
    usage: Usage | None
    usage_source: UsageSource | None
    repeat: bool
    supersedes_estimate: bool


class ResponseDedupe:
    """Remembers the Responses ids whose usage was counted (and those only estimated so far)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._counted: OrderedDict[str, None] = OrderedDict()
        self._estimated: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, api: str, response_id: str | None, usage: Usage | None, usage_source: UsageSource | None,
              provisional: bool) -> Verdict:
        if api != "responses" or usage is None or not response_id:
            return Verdict(usage, usage_source, False, False)
        if usage_source == "estimated":
            if provisional:
                with self._lock:
                    _remember(self._estimated, response_id, self.size)
            return Verdict(usage, usage_source, False, False)
        with self._lock:
            if response_id in self._counted:
                self._counted.move_to_end(response_id)
                return Verdict(None, None, True, False)
            _remember(self._counted, response_id, self.size)
            supersedes = response_id in self._estimated
            self._estimated.pop(response_id, None)
        return Verdict(usage, usage_source, False, supersedes)


def _remember(ids: OrderedDict[str, None], key: str, size: int) -> None:
    ids[key] = None
    ids.move_to_end(key)
    if len(ids) > size:
        ids.popitem(last=False)


class ContainerSessions:
    """Remembers the code interpreter containers already counted: a container is one billed session
    however many calls use it (it lives about 20 minutes). Bounded: the last ``size`` containers."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def new_sessions(self, usage: Usage, containers: tuple[str, ...]) -> Usage:
        """``usage`` with ``code_interpreter_sessions`` counting only the containers not seen before
        (items without a container id each stay a session of their own)."""
        if not containers:
            return usage
        loose = usage.code_interpreter_sessions - len(containers)
        with self._lock:
            new = 0
            for container in containers:
                if container not in self._seen:
                    new += 1
                _remember(self._seen, container, self.size)
        sessions = max(0, loose) + new
        return usage if sessions == usage.code_interpreter_sessions else dataclasses.replace(
            usage, code_interpreter_sessions=sessions)
