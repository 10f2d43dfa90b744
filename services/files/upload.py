"""Streaming the multipart upload of `POST /datafiles/` straight into its file, in constant memory.

The request body is read from the WSGI input in CHUNK pieces and fed to werkzeug's sans-io
`MultipartDecoder`; the `raw_file` part's data is written to its final path as it arrives, hashed
(sha256) and counted on the way. Text fields are kept (each at most `max_field_bytes`); other file
parts are refused. Whatever goes wrong, a partly written file is removed.

`FORM_MARGIN` (shared/bodies.py's `MULTIPART_MARGIN`, the same allowance the body guard gives
uploads) is what the multipart framing and the form fields may add to a file: a declared
Content-Length that many bytes above a limit is refused before anything is read; below that, the
file's own bytes are counted as they arrive.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from shared.bodies import MULTIPART_MARGIN
from shared.errors import BadRequest, PayloadTooLarge

CHUNK = 1024 * 1024
FORM_MARGIN = MULTIPART_MARGIN
FILE_FIELD = "raw_file"
MAX_FIELDS = 64


@dataclass
class StoredFile:
    path: Path
    filename: str
    content_type: str | None
    size: int = 0
    sha256: str = ""


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    file: StoredFile | None = None


def _safe_filename(raw: str | None) -> str:
    """The file's own name as a title: its last path component, without control characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or "unnamed"


def receive(
    stream,
    boundary: str | None,
    *,
    start_file: Callable[[Mapping[str, str], str], Path],
    max_bytes: int,
    max_field_bytes: int,
    chunk: int = CHUNK,
    on_file_data: Callable[[int], None] = lambda size: None,
) -> Upload:
    """Parse the body; `start_file(fields so far, filename)` returns where the file goes (it may
    refuse the upload by raising, before any byte is written); `on_file_data(size)` is told the
    file's size with each piece before the piece is written (it may stop the upload by raising)."""
    if not boundary:
        raise BadRequest("Send the file as multipart/form-data with a `raw_file` part.", message_type="invalid_upload")
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_form_memory_size=4 * chunk + 65536, max_parts=MAX_FIELDS + 1)
    upload = Upload()
    current: dict | None = None
    out = None
    digest = None
    finished = False
    try:
        while not finished:
            data = stream.read(chunk)
            try:
                decoder.receive_data(data or None)
                event = decoder.next_event()
                while not isinstance(event, NeedData):
                    if isinstance(event, File):
                        if event.name != FILE_FIELD:
                            raise BadRequest(f"Unexpected file part {event.name!r}; send the file as `{FILE_FIELD}`.",
                                             message_type="invalid_upload")
                        if upload.file is not None:
                            raise BadRequest(f"Send one `{FILE_FIELD}` per request.", message_type="invalid_upload")
                        filename = _safe_filename(event.filename)
                        path = start_file(upload.fields, filename)
                        path.parent.mkdir(parents=True, exist_ok=True)
                        upload.file = StoredFile(path=path, filename=filename,
                                                 content_type=event.headers.get("Content-Type"))
                        out = open(path, "wb")
                        digest = hashlib.sha256()
                        current = {"kind": "file"}
                    elif isinstance(event, Field):
                        if event.name == FILE_FIELD:
                            raise BadRequest(f"`{FILE_FIELD}` must be a file part (with a filename).",
                                             message_type="invalid_upload")
                        if len(upload.fields) >= MAX_FIELDS:
                            raise BadRequest("Too many form fields.", message_type="invalid_upload")
                        current = {"kind": "field", "name": event.name, "parts": [], "size": 0}
                    elif isinstance(event, Data):
                        if current is None:
                            raise BadRequest("The multipart body is malformed.", message_type="invalid_upload")
                        if current["kind"] == "file":
                            if event.data:
                                upload.file.size += len(event.data)
                                if upload.file.size > max_bytes:
                                    raise PayloadTooLarge(f"Files are limited to {max_bytes} bytes.")
                                on_file_data(upload.file.size)
                                digest.update(event.data)
                                out.write(event.data)
                            if not event.more_data:
                                out.close()
                                out = None
                                upload.file.sha256 = digest.hexdigest()
                                current = None
                        else:
                            current["size"] += len(event.data)
                            if current["size"] > max_field_bytes:
                                raise BadRequest(f"The field {current['name']!r} is longer than {max_field_bytes} bytes.",
                                                 message_type="invalid_upload")
                            current["parts"].append(event.data)
                            if not event.more_data:
                                raw = b"".join(current["parts"])
                                try:
                                    upload.fields[current["name"]] = raw.decode("utf-8")
                                except UnicodeDecodeError:
                                    raise BadRequest(f"The field {current['name']!r} is not UTF-8 text.",
                                                     message_type="invalid_upload") from None
                                current = None
                    elif isinstance(event, Epilogue):
                        finished = True
                        break
                    event = decoder.next_event()
            except RequestEntityTooLarge:
                raise BadRequest("The multipart body is malformed (a part header is too long).",
                                 message_type="invalid_upload") from None
            except ValueError as exc:
                raise BadRequest(f"The multipart body is malformed: {exc}.", message_type="invalid_upload") from None
            if not data and not finished:
                raise BadRequest("The multipart body ended early.", message_type="invalid_upload")
        if upload.file is None:
            raise BadRequest(f"No file: send it in a `{FILE_FIELD}` part.", message_type="invalid_upload")
        if out is not None:
            raise BadRequest("The multipart body ended inside the file.", message_type="invalid_upload")
        return upload
    except BaseException:
        if out is not None:
            out.close()
        if upload.file is not None:
            try:
                os.unlink(upload.file.path)
            except FileNotFoundError:
                pass
        raise
