"""Docker's log and attach stream encodings, and reading the shim's json-file log."""

import asyncio
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from panel.containers.models import Container

from .shapes import RUNNING_STATES, log_path

STREAMS = {"stdout": 1, "stderr": 2}
POLL_INTERVAL = 0.05  # seconds between reads of a followed log
STATE_INTERVAL = 0.25  # seconds between checks whether a followed container still runs


def frame(stream: int, payload: bytes) -> bytes:
    """Docker's multiplexed framing: stream byte, 3 zero bytes, big-endian uint32 length."""
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


def parse_time_ns(text: str) -> int:
    """RFC3339(Nano) to integer nanoseconds since the epoch."""
    if text.endswith("Z") and "T" in text:
        head, _, frac = text[:-1].partition(".")
        try:
            moment = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
            digits = (frac + "000000000")[:9] if frac else "0"
            return int(moment.timestamp()) * 1_000_000_000 + int(digits)
        except ValueError:
            pass
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1_000_000) * 1000


def parse_unix_ns(text: str) -> int:
    """Docker's since/until: seconds with an optional fraction ("1700000000.123456789")."""
    text = text.strip()
    seconds, _, frac = text.partition(".")
    try:
        value = int(seconds or "0") * 1_000_000_000
        if frac:
            value += int((frac + "000000000")[:9])
    except ValueError:
        try:
            return parse_time_ns(text)
        except ValueError:
            raise ValueError(f"invalid time value {text!r}") from None
    return value


@dataclass
class LogOptions:
    stdout: bool = True
    stderr: bool = True
    timestamps: bool = False
    since_ns: int = 0
    until_ns: int = 0
    tail: int | None = None  # None: all lines
    follow: bool = False
    tty: bool = False


class LineEncoder:
    """Turns json-file lines into the bytes Docker's log endpoint sends."""

    def __init__(self, options: LogOptions):
        self.options = options

    def encode(self, line: bytes) -> bytes:
        try:
            entry = json.loads(line)
        except ValueError:
            return b""  # a torn line
        if not isinstance(entry, dict):
            return b""
        stream = STREAMS.get(entry.get("stream"), 1)
        opts = self.options
        if (stream == 1 and not opts.stdout) or (stream == 2 and not opts.stderr):
            return b""
        stamp = str(entry.get("time") or "")
        if opts.since_ns or opts.until_ns:
            try:
                moment = parse_time_ns(stamp)
            except ValueError:
                moment = 0
            if opts.since_ns and moment < opts.since_ns:
                return b""
            if opts.until_ns and moment > opts.until_ns:
                return b""
        payload = str(entry.get("log", "")).encode("utf-8", "surrogateescape")
        if opts.timestamps:
            payload = stamp.encode() + b" " + payload
        if opts.tty:
            return payload
        return frame(stream, payload)

    def encode_many(self, data: bytes) -> bytes:
        return b"".join(self.encode(line) for line in data.splitlines() if line)


def tail_offset(f, lines: int) -> int:
    """The offset where the last `lines` complete lines of an open file begin."""
    end = f.seek(0, os.SEEK_END)
    if lines <= 0:
        return end
    pos, found, block = end, 0, 64 * 1024
    # A final newline ends the last line; it does not start a new one.
    skip_last = True
    while pos > 0:
        step = min(block, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        for i in range(len(chunk) - 1, -1, -1):
            if chunk[i] != 0x0A:
                continue
            if skip_last and pos + i == end - 1:
                skip_last = False
                continue
            found += 1
            if found == lines:
                return pos + i + 1
        skip_last = False
    return 0


def read_complete(f, carry: bytes) -> tuple[bytes, bytes]:
    """Complete lines available now (with the partial line carried over), and the new carry."""
    data = carry + f.read()
    cut = data.rfind(b"\n") + 1
    return data[:cut], data[cut:]


async def _still_running(container_id: str) -> bool:
    state = await Container.objects.filter(pk=container_id).values_list("state", flat=True).afirst()
    return state in RUNNING_STATES


async def stream_logs(container_id: str, options: LogOptions):
    """The log as Docker sends it; with follow, new lines until the container stops."""
    encoder = LineEncoder(options)
    try:
        f = open(log_path(container_id), "rb")  # noqa: SIM115 - closed in finally
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        if options.tail is not None:
            f.seek(tail_offset(f, options.tail))
        else:
            f.seek(0)
        data, carry = read_complete(f, b"")
        out = encoder.encode_many(data)
        if out:
            yield out
        if not options.follow:
            return
        loop = asyncio.get_running_loop()
        next_check = 0.0
        while True:
            data, carry = read_complete(f, carry)
            if data:
                out = encoder.encode_many(data)
                if out:
                    yield out
                continue
            now = loop.time()
            if now >= next_check:
                next_check = now + STATE_INTERVAL
                if not await _still_running(container_id):
                    data, carry = read_complete(f, carry)
                    out = encoder.encode_many(data + (carry if carry.endswith(b"}") else b""))
                    if out:
                        yield out
                    return
            await asyncio.sleep(POLL_INTERVAL)
    finally:
        f.close()


def replay(container_id: str, options: LogOptions) -> bytes:
    """The whole log, encoded (attach with logs=1)."""
    try:
        with open(log_path(container_id), "rb") as f:
            data = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return b""
    return LineEncoder(options).encode_many(data)
