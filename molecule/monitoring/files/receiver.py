"""A test-only receiver of Alertmanager's notifications: webhooks and e-mail, each written to a file.

Every POST body (Alertmanager's webhook JSON) becomes one line of $DATA/webhook.jsonl; every e-mail
received over SMTP (no TLS, no authentication, as a local sink) is appended to $DATA/mail.txt with a
separator line. GET /health answers 200. Standard library only (smtpd is deprecated but still in 3.11).
"""

import json
import os
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import asyncore  # pylint: disable=deprecated-module
    import smtpd  # pylint: disable=deprecated-module

DATA = os.environ.get("DATA", "/data")
LOCK = threading.Lock()


def append(name, text):
    with LOCK, open(os.path.join(DATA, name), "a", encoding="utf-8") as handle:
        handle.write(text)


class Webhook(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        append("webhook.jsonl", json.dumps(json.loads(body), sort_keys=True) + "\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class Mail(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        append("mail.txt", "From %s to %s\n%s\n----- end of message -----\n" % (mailfrom, ",".join(rcpttos), text))


def main():
    Mail(("0.0.0.0", int(os.environ.get("SMTP_PORT", "2525"))), None, decode_data=False)
    threading.Thread(target=asyncore.loop, daemon=True).start()
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Webhook).serve_forever()


if __name__ == "__main__":
    main()
