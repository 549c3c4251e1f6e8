"""HTTP echo server, a stand-in for a service that has no package on the test bed.

Every request gets a JSON answer describing it (method, path, query, headers, body) with a
``stand_in`` field naming the service it replaces (environment STAND_IN_FOR), so a test can see
what a proxy forwarded without claiming the real service answered. ``GET /health`` answers 200.
A websocket upgrade is accepted (101) and every text frame is echoed back, with the first frame
preceded by the JSON description of the upgrade request, so a test can hold a socket open through
a proxy. Listens on $PORT (default 8080), standard library only.
"""

import base64
import hashlib
import json
import struct
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STAND_IN_FOR = os.environ.get("STAND_IN_FOR", "unnamed")


class EchoHandler(BaseHTTPRequestHandler):
    server_version = "soulmatting-echo/1"
    protocol_version = "HTTP/1.1"

    def _describe(self, body="", encoding="utf-8"):
        url = urlsplit(self.path)
        return {
            "stand_in": STAND_IN_FOR,
            "method": self.command,
            "path": url.path,
            "raw_path": self.path,
            "query": parse_qs(url.query, keep_blank_values=True),
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "body": body,
            "body_encoding": encoding,
        }

    def _websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self._send_frame(json.dumps(self._describe(), sort_keys=True).encode("utf-8"))
        while True:
            frame = self._read_frame()
            if frame is None:
                return
            self._send_frame(frame)

    def _read_frame(self):
        head = self.rfile.read(2)
        if len(head) < 2 or head[0] & 0x0F == 0x8:  # closed, or a close frame
            return None
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack(">H", self.rfile.read(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self.rfile.read(8))[0]
        mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
        data = self.rfile.read(length)
        return bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def _send_frame(self, data):
        header = bytes([0x81, len(data)]) if len(data) < 126 else bytes([0x81, 126]) + struct.pack(">H", len(data))
        self.wfile.write(header + data)
        self.wfile.flush()

    def _answer(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        if url.path == "/health":
            payload = {"status": "ok", "stand_in": STAND_IN_FOR}
        else:
            try:
                body, encoding = raw.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                body, encoding = base64.b64encode(raw).decode("ascii"), "base64"
            payload = self._describe(body, encoding)
        data = json.dumps(payload, sort_keys=True).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Stand-In-For", STAND_IN_FOR)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _answer

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


def main():
    server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), EchoHandler)
    server.daemon_threads = True
    # docker stop sends SIGTERM; exit at once instead of waiting for the kill.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("echo server standing in for %s on port %d" % (STAND_IN_FOR, server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
