#!/usr/bin/env python3
"""A real SMTP relay (aiosmtpd) with a scripted behaviour, for DeliveryTests.

Each accepted message is parsed with Python's email package and written as one JSON file in
--out (decoded headers and parts, and the raw message), so a test checks what a mail client
would show. --script is a comma-separated list of DATA replies used in turn before accepting
(for example 451,451 or 550); --delay waits that many seconds before answering DATA. Prints
"READY <port>" once listening; runs until killed.
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import socket
import ssl
import sys
import time
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, out, script, delay, implicit_tls):
        self.out = out
        # With implicit TLS the server speaks nothing but TLS: every session is encrypted.
        self.implicit_tls = implicit_tls
        self.script = [int(code) for code in script.split(",") if code]
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.script:
            code = self.script.pop(0)
            return f"{code} scripted answer"
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if part.get_content_maintype() == "text":
                parts[part.get_content_type()] = part.get_content()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None or self.implicit_tls,
            "auth": session.authenticated,
            "subject": str(message["Subject"]),
            "from": str(message["From"]),
            "to": str(message["To"]),
            "date": str(message["Date"]),
            "message_id": str(message["Message-ID"]),
            "notification": str(message["X-Forecourt-Notification"]),
            "content_type": message.get_content_type(),
            "text": parts.get("text/plain", ""),
            "html": parts.get("text/html", ""),
            "max_line": max(len(line) for line in raw.split(b"\r\n")),
            "received": time.time(),
        }
        name = os.path.join(self.out, f"{time.time():.6f}-{uuid.uuid4()}.json")
        with open(name + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(name + ".tmp", name)
        return "250 OK accepted"


def authenticator(expected):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and \
            f"{auth_data.login.decode()}:{auth_data.password.decode()}" == expected
        return AuthResult(success=ok)
    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--script", default="")
    parser.add_argument("--delay", type=float, default=0)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--auth")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    options = dict(hostname="127.0.0.1", port=port, ready_timeout=10)
    if args.implicit_tls:
        options["ssl_context"] = context
    elif context is not None:
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        options.update(authenticator=authenticator(args.auth), auth_require_tls=context is not None)
    controller = Controller(Handler(args.out, args.script, args.delay, args.implicit_tls), **options)
    controller.start()
    print(f"READY {port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
