"""A small loopback HTTP/1.1 load generator: N keep-alive connections, one process each.

The client must cost far less than the servers it measures, so it sends
pre-built request bytes over a raw socket and reads each answer by its
Content-Length; every connection lives in a process of its own so the
clients do not share one GIL (nor the servers').
"""
import multiprocessing
import socket
import time
from typing import List, Optional, Sequence, Tuple

__all__ = ["Load", "request_bytes", "Result"]

Result = Tuple[int, int, float, float, List[int]]  # done, failed, start, end, bad statuses


def request_bytes(method: str, path: str, body: Optional[bytes] = None,
                  headers: Sequence[Tuple[str, str]] = ()) -> bytes:
    """One HTTP/1.1 request, ready to send on a keep-alive connection."""
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
    lines += ["%s: %s" % pair for pair in headers]
    if body is not None:
        lines += ["Content-Type: application/json", "Content-Length: %d" % len(body)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class _Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: Optional[socket.socket] = None
        self.buffer = b""

    def _open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buffer = sock, b""
        return sock

    def _fill(self, sock: socket.socket) -> None:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def send(self, data: bytes) -> Tuple[int, bytes]:
        """Send one request; its status and body."""
        sock = self.sock or self._open()
        sock.sendall(data)
        while b"\r\n\r\n" not in self.buffer:
            self._fill(sock)
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if chunked:
            body = self._chunked(sock, rest)
        else:
            self.buffer = rest
            while len(self.buffer) < length:
                self._fill(sock)
            body, self.buffer = self.buffer[:length], self.buffer[length:]
        if close:
            sock.close()
            self.sock = None
        return status, body

    def _chunked(self, sock: socket.socket, rest: bytes) -> bytes:
        self.buffer, body = rest, b""
        while True:
            while b"\r\n" not in self.buffer:
                self._fill(sock)
            size_line, _, self.buffer = self.buffer.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(self.buffer) < size + 2:
                self._fill(sock)
            body += self.buffer[:size]
            self.buffer = self.buffer[size + 2:]
            if size == 0:
                return body


def _worker(args: Tuple[int, List[bytes], Sequence[int], float]) -> Result:
    port, requests, ok, not_before = args
    connection = _Connection(port)
    connection._open()
    bad: List[int] = []
    failed = 0
    while time.time() < not_before:  # every connection starts at once
        time.sleep(0.0005)
    start = time.time()
    for data in requests:
        status, _ = connection.send(data)
        if status not in ok:
            failed += 1
            if len(bad) < 5:
                bad.append(status)
    end = time.time()
    if connection.sock is not None:
        connection.sock.close()
    return len(requests), failed, start, end, bad


class Load:
    """``concurrency`` client processes, started once and reused for every run."""

    def __init__(self, concurrency: int = 4) -> None:
        self.concurrency = concurrency
        context = multiprocessing.get_context("spawn")
        self.pool = context.Pool(concurrency)

    def run(self, port: int, requests: List[bytes], ok: Sequence[int] = (200, 201)
            ) -> Tuple[float, int, List[int]]:
        """Send ``requests`` spread over the connections; (requests/s, failures, statuses)."""
        slices = [requests[i::self.concurrency] for i in range(self.concurrency)]
        not_before = time.time() + 0.2
        results = self.pool.map(_worker, [(port, part, tuple(ok), not_before)
                                          for part in slices])
        done = sum(r[0] for r in results)
        failed = sum(r[1] for r in results)
        elapsed = max(r[3] for r in results) - min(r[2] for r in results)
        statuses = [s for r in results for s in r[4]]
        return done / elapsed if elapsed > 0 else 0.0, failed, statuses

    def one(self, port: int, data: bytes) -> Tuple[int, bytes]:
        """One request from this process (for setup), its status and body."""
        connection = _Connection(port)
        try:
            return connection.send(data)
        finally:
            if connection.sock is not None:
                connection.sock.close()

    def close(self) -> None:
        self.pool.close()
        self.pool.join()
