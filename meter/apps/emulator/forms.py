"""``multipart/form-data`` request bodies (audio and image uploads, Batch input files), parsed whole.

The emulator reads an upload into memory (up to Azure's 25 MB for audio), as the service does
before it answers; only the plain fields are decoded, a file part is kept as bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
"""Azure's largest upload (a Batch input file); audio is limited to 25 MB by ``AUDIO_LIMIT``."""
AUDIO_LIMIT = 25 * 1024 * 1024


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """Part name -> (file name, content)."""


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` content type (quoted or not), else ``None``."""
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        return None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode()
    return None


def parse(body: bytes, content_type: str) -> Form | None:
    """The fields and files of a form, or ``None`` when the body is not a well-formed form."""
    boundary = boundary_of(content_type)
    if boundary is None:
        return None
    delimiter = b"--" + boundary
    form = Form()
    parts = body.split(delimiter)
    if len(parts) < 3:
        return None
    for part in parts[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            return None
        content = content.removesuffix(b"\r\n")
        disposition = next((line for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-disposition:")), b"")
        params = _params(disposition.decode("utf-8", "replace"))
        name = params.get("name")
        if name is None:
            continue
        if "filename" in params:
            form.files[name] = (params["filename"], content)
        else:
            form.fields[name] = content.decode("utf-8", "replace")
    return form


def _params(disposition: str) -> dict[str, str]:
    out = {}
    for item in disposition.split(";")[1:]:
        key, _, value = item.strip().partition("=")
        out[key.strip().lower()] = value.strip().strip('"')
    return out
