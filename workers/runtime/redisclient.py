"""A tiny RESP2 client for the shim (no redis-py: the shim must stay small).

URLs: ``redis://[:password@]host[:port][/db]``, ``unix:///path/to.sock[?db=N]``.
Only ``_socket`` is imported.
"""

import _socket


class RedisError(Exception):
    pass


def parse_url(url):
    """-> (family, address, password, db)"""
    password, db = None, 0
    if url.startswith("unix://"):
        path, _, query = url[7:].partition("?")
        for item in query.split("&"):
            k, _, v = item.partition("=")
            if k == "db" and v:
                db = int(v)
            elif k == "password" and v:
                password = v
        return _socket.AF_UNIX, path, password, db
    if not url.startswith(("redis://", "tcp://")):
        raise RedisError("unsupported redis url: " + url)
    rest = url.split("://", 1)[1]
    netloc, _, path = rest.partition("/")
    if "@" in netloc:
        auth, _, netloc = netloc.rpartition("@")
        password = auth.partition(":")[2] or auth or None
    host, _, port = netloc.rpartition(":") if netloc.count(":") == 1 else (netloc, "", "")
    if path.split("?")[0]:
        db = int(path.split("?")[0])
    return _socket.AF_INET, (host or "127.0.0.1", int(port or 6379)), password, db


class Redis:
    def __init__(self, url, timeout=1.0):
        self.family, self.address, self.password, self.db = parse_url(url)
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    def connect(self):
        self.close()
        s = _socket.socket(self.family, _socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.address)
        except OSError:
            s.close()
            raise
        self.sock, self.buf = s, b""
        if self.password:
            self.command("AUTH", self.password)
        if self.db:
            self.command("SELECT", self.db)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def command(self, *args):
        if self.sock is None:
            self.connect()
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        try:
            self.sock.sendall(b"".join(out))
            return self._reply()
        except OSError:
            self.close()
            raise

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise OSError("redis connection closed")
        self.buf += data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise OSError("bad redis reply")
