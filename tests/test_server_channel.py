"""peestore's waitress channel: big and slow answers still arrive whole, small ones at once."""
import http.client
import socket
import time

import bottle

from peestore.rest._server import background

CHUNK = 256 * 1024
# 24 MB: over waitress' outbuf_high_watermark (16 MB), where the worker stops
# and waits for the main loop to send.
CHUNKS = 96


def _app() -> bottle.Bottle:
    app = bottle.Bottle()

    @app.get("/big")
    def big():
        for i in range(CHUNKS):
            yield bytes([65 + i % 26]) * CHUNK

    @app.get("/small")
    def small():
        return "ok"

    return app


def test_a_big_answer_to_a_slow_reader_arrives_whole():
    with background(_app(), threads=2) as url:
        host, port = url[len("http://"):].rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        time.sleep(1.5)  # a reader that stalls: the server's buffers fill up
        parts = []
        while True:
            data = sock.recv(256 * 1024)
            if not data:
                break
            parts.append(data)
        sock.close()
        received = b"".join(parts)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    if b"chunked" in head.lower():
        pieces, at = [], 0
        while True:
            end = body.index(b"\r\n", at)
            size = int(body[at:end], 16)
            if size == 0:
                break
            pieces.append(body[end + 2:end + 2 + size])
            at = end + 4 + size
        body = b"".join(pieces)
    assert len(body) == CHUNK * CHUNKS
    assert body[:1] == b"A" and body[-1:] == bytes([65 + (CHUNKS - 1) % 26])


def test_many_small_answers_on_keep_alive_connections():
    with background(_app(), threads=4) as url:
        host, port = url[len("http://"):].rsplit(":", 1)
        conns = [http.client.HTTPConnection(host, int(port), timeout=10) for _ in range(4)]
        for _ in range(50):
            for conn in conns:
                conn.request("GET", "/small")
                response = conn.getresponse()
                assert response.status == 200 and response.read() == b"ok"
        for conn in conns:
            conn.close()
