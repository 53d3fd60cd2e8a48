"""Read a container's json-file log (what the shim wrote) for the panel's log view."""

import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

TAIL_BYTES = 256 * 1024


@dataclass
class Chunk:
    stream: str  # stdout or stderr
    text: str


def log_path(container_id: str) -> Path:
    return Path(settings.STATE_ROOT) / "containers" / container_id / "container.log"


def parse(data: bytes) -> list[Chunk]:
    chunks: list[Chunk] = []
    for line in data.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut by the tail window, or one being written
        if not isinstance(entry, dict):
            continue
        stream = "stderr" if entry.get("stream") == "stderr" else "stdout"
        text = str(entry.get("log", ""))
        if chunks and chunks[-1].stream == stream:
            chunks[-1].text += text
        else:
            chunks.append(Chunk(stream, text))
    return chunks


def read_tail(container_id: str, limit: int = TAIL_BYTES) -> tuple[list[Chunk], int, bool]:
    """The last `limit` bytes' complete lines, the offset they end at, and whether older ones
    were left out. Only complete lines count, so a reader can continue at the offset."""
    try:
        with open(log_path(container_id), "rb") as f:
            size = f.seek(0, 2)
            start = max(0, size - limit)
            f.seek(start)
            data = f.read(size - start)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return [], 0, False
    end = data.rfind(b"\n") + 1
    data = data[:end]
    truncated = start > 0
    if truncated:  # drop the partial first line
        data = data[data.find(b"\n") + 1:]
    return parse(data), start + end, truncated


def read_from(container_id: str, offset: int, limit: int = TAIL_BYTES) -> tuple[list[Chunk], int]:
    """Complete lines written since `offset` (at most `limit` bytes from the end)."""
    try:
        with open(log_path(container_id), "rb") as f:
            size = f.seek(0, 2)
            if offset > size:  # the log was rotated or recreated
                offset = 0
            offset = max(offset, size - limit)
            f.seek(offset)
            data = f.read(size - offset)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return [], 0
    end = data.rfind(b"\n") + 1
    return parse(data[:end]), offset + end
