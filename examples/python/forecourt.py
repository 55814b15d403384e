"""A small Forecourt client: JSON-RPC 2.0, one JSON text per line, over TLS.

Standard library only (ssl, socket, json). Copy this file into your integration.

    from forecourt import Client
    with Client.from_environment() as client:          # FORECOURT_CONNECT, FORECOURT_CA, FORECOURT_API_KEY
        print(client.call("order.list", {"delayed": True}))

Calls are answered by id, so a client may have several in flight; server pushes (requests
without an id, such as `order.updated`) are kept in `client.pushes` until read with
`next_push()`. Errors come back as `ForecourtError` with the JSON-RPC code and
`error.data.reason` (see docs/protocol.md, "Errors").
"""
import collections
import json
import os
import socket
import ssl


class ForecourtError(Exception):
    """A JSON-RPC error response."""

    def __init__(self, error):
        self.code = error.get("code")
        self.message = error.get("message")
        self.data = error.get("data") or {}
        self.reason = self.data.get("reason")
        super().__init__(f"{self.code} {self.reason}: {self.message}")


class Client:
    def __init__(self, host, port, cafile=None, server_hostname=None, timeout=30.0):
        context = ssl.create_default_context(cafile=cafile)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        raw = socket.create_connection((host, port), timeout=timeout)
        self._socket = context.wrap_socket(raw, server_hostname=server_hostname or host)
        self._buffer = b""
        self._next_id = 1
        self._answers = {}
        self.pushes = collections.deque()
        self.principal = None

    @classmethod
    def from_environment(cls, authenticate=True):
        """Connects to FORECOURT_CONNECT (host:port, default 127.0.0.1:7443) trusting
        FORECOURT_CA, and authenticates with FORECOURT_API_KEY when set."""
        host, _, port = os.environ.get("FORECOURT_CONNECT", "127.0.0.1:7443").rpartition(":")
        client = cls(host, int(port), cafile=os.environ.get("FORECOURT_CA"),
                     server_hostname=os.environ.get("FORECOURT_SERVER_NAME", "localhost"))
        key = os.environ.get("FORECOURT_API_KEY")
        if authenticate and key:
            client.authenticate(key)
        return client

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self._socket.close()
        except OSError:
            pass

    def authenticate(self, api_key):
        self.principal = self.call("session.authenticate", {"api_key": api_key})["principal"]
        return self.principal

    def call(self, method, params=None):
        """Sends one request and waits for its answer; pushes that arrive meanwhile are kept."""
        request_id = self.send(method, params)
        while request_id not in self._answers:
            self._read_message()
        response = self._answers.pop(request_id)
        if "error" in response:
            raise ForecourtError(response["error"])
        return response["result"]

    def send(self, method, params=None):
        """Sends a request without waiting (pipelining); returns its id for `call`-style waiting."""
        request_id = self._next_id
        self._next_id += 1
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        self._socket.sendall(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        return request_id

    def next_push(self, timeout=None):
        """The next server push (`{"method", "params"}`), waiting up to `timeout` seconds; None on timeout."""
        previous = self._socket.gettimeout()
        self._socket.settimeout(timeout)
        try:
            while not self.pushes:
                self._read_message()
            return self.pushes.popleft()
        except (socket.timeout, TimeoutError):
            return None
        finally:
            self._socket.settimeout(previous)

    def _read_message(self):
        while b"\n" not in self._buffer:
            chunk = self._socket.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        if not line.strip():
            return
        message = json.loads(line)
        if isinstance(message, dict) and "id" not in message and "method" in message:
            self.pushes.append(message)
        elif isinstance(message, dict) and message.get("id") is not None:
            self._answers[message["id"]] = message
        else:
            raise ForecourtError((message or {}).get("error", {"code": None, "message": "unexpected message"}))
