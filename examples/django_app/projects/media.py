"""Serve ``MEDIA_ROOT`` with byte ranges, so a ``<video>`` can seek.

Django's own ``django.views.static.serve`` answers every request with the whole file (200), and
a browser that cannot fetch a range cannot seek. :func:`serve_media` honours one byte range
(206 with ``Content-Range``, 416 past the end); a request for several ranges, or a ``Range``
header it cannot read, gets the whole file, as RFC 9110 allows. In production the web server
(nginx, a CDN) serves ``MEDIA_ROOT`` and does all of this itself.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import http_date
from django.views.decorators.http import require_safe

CHUNK = 64 * 1024
RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def media_file(path: str) -> Path:
    """The file ``path`` names under ``MEDIA_ROOT``; ``Http404`` for anything else.

    A hidden name (a segment starting with ``.``) is never served: the runner writes a
    render's temporary files (``.renderstate-*``) beside the final video.
    """
    root = Path(settings.MEDIA_ROOT).resolve()
    parts = path.split("/")
    if any(part == "" or part.startswith(".") for part in parts):
        raise Http404(path)
    target = root.joinpath(*parts)
    if not target.resolve().is_relative_to(root) or not target.is_file():
        raise Http404(path)
    return target


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The ``(first, last)`` bytes one range asks for; ``None`` to send the whole file.

    Raises:
        ValueError: The range starts past the end of the file (answered 416).
    """
    match = RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None  # several ranges, another unit, or nonsense: the whole file
    first, last = match.groups()
    if first == "":  # a suffix: the last N bytes
        if int(last) == 0:
            raise ValueError(header)
        return max(size - int(last), 0), size - 1
    if int(first) >= size:
        raise ValueError(header)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if end < int(first):
        return None  # last before first: a syntax error, ignored
    return int(first), end


def read_span(file: BinaryIO, first: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``file`` from ``first``, in chunks; the file is closed at the end."""
    with file:
        file.seek(first)
        while length > 0:
            chunk = file.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


@require_safe
def serve_media(request: HttpRequest, path: str) -> HttpResponse | StreamingHttpResponse:
    """``GET /media/<path>``: the file, or the one byte range the request asks for."""
    target = media_file(path)
    stat = target.stat()
    size = stat.st_size
    last_modified = http_date(stat.st_mtime)
    header = request.headers.get("Range", "")
    # If-Range: the client holds an older copy (a re-render replaced the file): send it all.
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range != last_modified:
        header = ""
    try:
        span = byte_range(header, size) if header else None
    except ValueError:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    else:
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        file = target.open("rb")
        if span is None:
            response = FileResponse(file, content_type=content_type)
        else:
            first, last = span
            length = last - first + 1
            response = StreamingHttpResponse(
                read_span(file, first, length), status=206, content_type=content_type
            )
            response["Content-Length"] = str(length)
            response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Last-Modified"] = last_modified
    return response
