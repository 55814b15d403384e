#!/usr/bin/env python3
"""A real HTTP(S) webhook receiver with scripted answers, for DeliveryTests.

Every request is appended to --out as one JSON line (method, path, headers, body as text).
--script is a comma-separated list of status codes used in turn; after it, 200. --redirect
answers 302 to another path. Prints "READY <port>" once listening; runs until killed.
"""
import argparse
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--script", default="")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    script = [int(code) for code in args.script.split(",") if code]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                status = script.pop(0) if script else 200
                with open(args.out, "a") as f:
                    f.write(json.dumps({
                        "method": "POST", "path": self.path, "headers": dict(self.headers.items()),
                        "body": body.decode("utf-8"), "status": status,
                    }) + "\n")
            payload = b'{"ok": true}' if status < 300 else b"scripted failure"
            self.send_response(status)
            if status in (301, 302, 307, 308):
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
