"""A form field of a ``multipart/form-data`` upload (audio transcriptions, image edits), read in place.

Uploads go out untouched and are never buffered or read by meter: only a body that is already in memory
is looked at, and only its first ``HEAD_BYTES`` (the SDKs put the plain fields before the files), with
no copy of the rest. A streaming upload (the openai SDK's ``files=``) is not read at all: its model is
then unknown, unless the path names the deployment. Pure: no I/O.
"""

from __future__ import annotations

import re

HEAD_BYTES = 64 * 1024
"""How much of an in-memory upload is looked at for a field: the fields come first, the files after."""
MAX_VALUE_BYTES = 256
"""A longer field value is not a model name."""

_FIELD = re.compile(rb'Content-Disposition:[ \t]*form-data;[ \t]*name="?([^";\r\n]{1,64})"?[^\r\n]*\r\n'
                    rb"(?:[^\r\n]+\r\n)*\r\n", re.IGNORECASE)


def is_form(content_type: str | None) -> bool:
    """Is this a ``multipart/form-data`` request body?"""
    return content_type is not None and content_type[:19].lower() == "multipart/form-data"


def form_field(body: bytes, name: str) -> str | None:
    """The value of the plain field ``name`` in the first ``HEAD_BYTES`` of ``body``, or ``None``."""
    head = body[:HEAD_BYTES]
    wanted = name.encode()
    for m in _FIELD.finditer(head):
        if m.group(1) != wanted or b"filename=" in m.group(0).split(b"\r\n", 1)[0]:
            continue
        end = head.find(b"\r\n--", m.end(), m.end() + MAX_VALUE_BYTES + 1)
        if end < 0:
            return None
        value = head[m.end():end].strip()
        return value.decode("utf-8", "replace") if value else None
    return None
