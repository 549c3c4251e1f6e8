"""HTTP echo server, a stand-in for a service that has no package on the test bed.

Every request gets a JSON answer describing it (method, path, query, headers, body) with a
``stand_in`` field naming the service it replaces (environment STAND_IN_FOR), so a test can see
what a proxy forwarded without claiming the real service answered. ``GET /health`` answers 200.
Listens on $PORT (default 8080), standard library only.
"""

import base64
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STAND_IN_FOR = os.environ.get("STAND_IN_FOR", "unnamed")


class EchoHandler(BaseHTTPRequestHandler):
    server_version = "soulmatting-echo/1"
    protocol_version = "HTTP/1.1"

    def _answer(self):
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
            payload = {
                "stand_in": STAND_IN_FOR,
                "method": self.command,
                "path": url.path,
                "raw_path": self.path,
                "query": parse_qs(url.query, keep_blank_values=True),
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "body": body,
                "body_encoding": encoding,
            }
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
