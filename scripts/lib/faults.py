#!/usr/bin/env python3
"""Fault scenarios against a real `forecourt serve` (run by scripts/faults, which makes the
cluster, the certificates, the keyring and the SMTP relay; docs/security.md, "Faults").

Clients are plain TLS sockets speaking the line protocol, one request at a time each, so that
every request is known to have been answered or not. Writes carry idempotency keys and are
retried with the same key on -32007, -32008 and connection loss, as docs/protocol.md tells
clients to. After each scenario the database is read as the owner and compared with what
the clients were told.

Scenarios:
  restarts  PostgreSQL restarted N times (pg_ctl restart -m fast and -m immediate, alternating)
            under order.create and order.record_event load; the service must answer again within
            2 s of the database and never restart.
  kill      the service killed with SIGKILL under load, then started again: every acknowledged
            write is there, clients' retries make exactly one order per key, and the outbox
            (order_confirmation emails) is sent after the restart.
  term      SIGTERM under load: every answered write is committed; every unanswered one did
            nothing or is found by its idempotency key; the service exits within its grace period.

Prints the figures of each scenario and one JSON line "faults: {...}"; exits 1 if a check fails.
"""
import argparse
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

RETRYABLE = {-32007, -32008}


def now():
    return time.monotonic()


def rfc3339(ts=None):
    return datetime.fromtimestamp(ts or time.time(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ConnectionLost(Exception):
    pass


class CallTimeout(Exception):
    pass


class Client:
    """One TLS connection, one request at a time."""

    def __init__(self, port, ca, key, timeout):
        self.port, self.ca, self.key, self.timeout = port, ca, key, timeout
        self.sock = None
        self.buffer = b""
        self.next_id = 0

    def connect(self):
        context = ssl.create_default_context(cafile=self.ca)
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        self.buffer = b""
        result = self.call("session.authenticate", {"api_key": self.key})
        if "error" in result:
            raise RuntimeError(f"authentication failed: {result['error']}")

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def call(self, method, params):
        """The response object; raises ConnectionLost (nothing was answered) or CallTimeout."""
        if self.sock is None:
            raise ConnectionLost("not connected")
        self.next_id += 1
        line = json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}) + "\n"
        deadline = now() + self.timeout
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(line.encode())
            while b"\n" not in self.buffer:
                remaining = deadline - now()
                if remaining <= 0:
                    raise CallTimeout()
                self.sock.settimeout(remaining)
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionLost("closed by the server")
                self.buffer += chunk
        except socket.timeout:
            self.close()
            raise CallTimeout()
        except (OSError, ssl.SSLError) as error:
            self.close()
            raise ConnectionLost(str(error))
        answer, self.buffer = self.buffer.split(b"\n", 1)
        response = json.loads(answer)
        if response.get("id") != self.next_id:
            raise RuntimeError(f"answer to another request: {response}")
        return response


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = {}
        self.retries = {"-32007": 0, "-32008": 0, "connection": 0}
        self.timeouts = 0
        self.errors = []
        self.latencies = []

    def add(self, method, latency):
        with self.lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            self.latencies.append(latency)

    def retry(self, why):
        with self.lock:
            self.retries[why] += 1

    def timeout(self):
        with self.lock:
            self.timeouts += 1

    def error(self, text):
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(text)


class Writer(threading.Thread):
    """Creates orders (and records an event on every third) until told to stop, retrying each
    call with the same parameters until it is answered."""

    def __init__(self, world, index, stats, stop, retry_deadline, give_up_on_loss=False, pace=0.0):
        super().__init__(daemon=True)
        self.world, self.index, self.stats, self.stop = world, index, stats, stop
        self.retry_deadline = retry_deadline
        self.give_up_on_loss = give_up_on_loss
        self.pace = pace
        self.client = Client(world.port, world.ca, world.admin_key, world.timeout)
        self.factory = Client(world.port, world.ca, world.factory_key, world.timeout)
        self.acked_orders = {}    # idempotency key -> (order id, order number)
        self.attempted_keys = []
        self.acked_events = []    # (order id, event, occurred_at)
        self.unanswered = []      # (method, params, sent at) sent with no answer (give_up_on_loss)
        self.answered_after_stop = 0

    def run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            key = f"{self.world.tag}-{self.index}-{n}"
            params = {"dealer_id": self.world.dealers[n % len(self.world.dealers)], "customer_id": random.choice(self.world.customers),
                      "model": {"code": "XC40", "year": 2027, "trim": "Plus"}, "exterior_color": "Glacier White",
                      "options": ["TOW"], "idempotency_key": key}
            self.attempted_keys.append((key, params))
            result = self.reliably(self.client, "order.create", params)
            if result is None:
                return
            self.acked_orders[key] = (result["id"], result["order_number"])
            if self.pace:
                time.sleep(self.pace)
            if n % 3 == 0:
                event = {"id": result["id"], "event": "scheduled", "occurred_at": rfc3339()}
                if self.reliably(self.factory, "order.record_event", event) is None:
                    return
                self.acked_events.append((result["id"], "scheduled", event["occurred_at"]))

    def reliably(self, client, method, params):
        """The result of the call, retried as a client should; None when giving up."""
        backoff = 0.05
        while True:
            if client.sock is None:
                try:
                    client.connect()
                except (ConnectionLost, CallTimeout, OSError, ssl.SSLError, RuntimeError) as error:
                    # Refused or reset while connecting: the request was never sent.
                    client.close()
                    if self.give_up_on_loss or now() > self.retry_deadline():
                        if not self.give_up_on_loss:
                            self.stats.error(f"{method}: cannot connect at the retry deadline ({error})")
                        return None
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 0.5)
                    continue
            started = now()
            try:
                response = client.call(method, params)
            except CallTimeout:
                self.stats.timeout()
                self.stats.error(f"{method}: no answer within {self.world.timeout} s")
                if self.give_up_on_loss:
                    self.unanswered.append((method, params, started))
                    return None
                continue
            except ConnectionLost as error:
                # Sent (or maybe sent) and no answer: retried with the same parameters.
                self.stats.retry("connection")
                if self.give_up_on_loss:
                    self.unanswered.append((method, params, started))
                    return None
                if now() > self.retry_deadline():
                    self.stats.error(f"{method}: gave up after the retry deadline ({error})")
                    return None
                time.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
                continue
            self.stats.add(method, now() - started)
            if self.stop.is_set():
                self.answered_after_stop += 1
            if "result" in response:
                return response["result"]
            code = response["error"]["code"]
            if code in RETRYABLE:
                self.stats.retry(str(code))
                if now() > self.retry_deadline():
                    self.stats.error(f"{method}: still {code} at the retry deadline")
                    return None
                time.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
                continue
            self.stats.error(f"{method}: {response['error']}")
            return None


class World:
    def __init__(self, args):
        self.args = args
        self.port = None
        self.ca = args.ca
        self.timeout = args.call_timeout
        self.run_id = uuid.uuid4().hex[:8]
        self.admin_key = args.admin_key
        self.factory_key = args.factory_key
        self.server = None
        self.server_log = open(args.server_log, "ab")
        self.dealers = []
        self.customers = []
        self.tag = None

    def begin(self, scenario):
        """Dealers of the scenario's own, so that its orders, keys and notifications are counted apart."""
        self.tag = f"faults-{self.run_id}-{scenario}"
        self.code = f"F{self.run_id[:5].upper()}{scenario[0].upper()}"
        self.customers = self.customers_by_email[scenario == "kill"]
        admin = self.admin()
        self.dealers = []
        for i in range(2):
            dealer = admin.call("dealer.create", {"code": f"{self.code}{i}", "name": f"Fault Motors {i}"})
            self.dealers.append(dealer["result"]["id"])
        admin.close()

    # The service.

    def start_server(self):
        self.port = self.port or free_port()
        env = dict(os.environ)
        env.update({
            "FORECOURT_DATABASE_URL": self.args.database_url, "FORECOURT_LISTEN": f"127.0.0.1:{self.port}",
            "FORECOURT_TLS_CERT": self.args.cert, "FORECOURT_TLS_KEY": self.args.key, "FORECOURT_KEYRING": self.args.keyring,
            "FORECOURT_METRICS_LISTEN": "off", "FORECOURT_MIGRATIONS_DIR": self.args.migrations,
            "FORECOURT_LOG_LEVEL": os.environ.get("FAULTS_LOG_LEVEL", "warning"), "FORECOURT_DB_POOL_SIZE": "6",
            "FORECOURT_SMTP_URL": f"smtp://127.0.0.1:{self.args.smtp_port}?tls=off", "FORECOURT_MAIL_FROM": "orders@forecourt.test",
            "FORECOURT_DELIVERY_RETRY_BASE": "0.2", "FORECOURT_DELIVERY_LEASE": "3",
        })
        self.server = subprocess.Popen([self.args.forecourt, "serve"], env=env, stdout=self.server_log, stderr=self.server_log)
        deadline = now() + 60
        while now() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"forecourt serve exited with {self.server.returncode} (log: {self.args.server_log})")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("forecourt serve did not listen within 60 s")

    def admin(self):
        client = Client(self.port, self.ca, self.admin_key, self.timeout)
        client.connect()
        return client

    def setup(self):
        """Customers who want email (the kill scenario's, whose outbox is followed) and who do not
        (so that the other scenarios leave no queue of mail for it to wait behind)."""
        admin = self.admin()
        self.customers_by_email = {}
        for notify in (True, False):
            self.customers_by_email[notify] = []
            for i in range(4):
                customer = admin.call("customer.create", {
                    "full_name": f"Faye Fault {i}", "email": f"faye{i}@example.com", "notify": {"email": notify, "sms": False}})
                self.customers_by_email[notify].append(customer["result"]["id"])
        admin.close()

    # The database, as the owner.

    def psql(self, sql):
        out = subprocess.run([self.args.psql, "-X", "-q", "-At", "-F", "\t", "-d", self.args.database_url, "-c", sql],
                             check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def pg_ctl(self, *arguments):
        command = [os.path.join(self.args.pgbin, "pg_ctl"), "-D", self.args.pg_data, "-l", self.args.pg_log, *arguments]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--"] + command
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def check_writes(self, writers, report):
        """Acknowledged orders and events are in the database; every key has at most one order."""
        keys = {row[0]: row[1] for row in self.psql(
            f"SELECT key, object_id FROM forecourt.idempotency_keys WHERE key LIKE '{self.tag}-%'")}
        orders = {row[0]: row[1] for row in self.psql(
            f"SELECT o.id, o.order_number FROM forecourt.orders o JOIN forecourt.dealers d "
            f"ON d.dealer_group_id = o.dealer_group_id AND d.id = o.dealer_id WHERE d.code LIKE '{self.code}%'")}
        events = {(row[0], row[1], row[2]) for row in self.psql(
            "SELECT order_id, event, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
            "FROM forecourt.order_events WHERE event = 'scheduled'")}
        acked = {k: v for w in writers for k, v in w.acked_orders.items()}
        acked_events = [e for w in writers for e in w.acked_events]
        lost = [k for k, (oid, number) in acked.items() if keys.get(k) != oid or orders.get(oid) != number]
        lost_events = [e for e in acked_events if e not in events]
        # Every order of the run belongs to exactly one key: no duplicate made by a retry.
        referenced = list(keys.values())
        orphans = [oid for oid in orders if oid not in referenced]
        report.update({
            "acknowledged_orders": len(acked), "acknowledged_orders_found": len(acked) - len(lost),
            "keys": len(keys), "orders": len(orders), "orders_without_key": len(orphans),
            "keys_with_two_orders": len(referenced) - len(set(referenced)),
            "acknowledged_events": len(acked_events), "acknowledged_events_found": len(acked_events) - len(lost_events),
        })
        ok = not lost and not lost_events and not orphans and len(referenced) == len(set(referenced)) and len(keys) == len(orders)
        print(f"  acknowledged orders in the database: {len(acked) - len(lost)}/{len(acked)}; "
              f"acknowledged events: {len(acked_events) - len(lost_events)}/{len(acked_events)}")
        print(f"  idempotency keys: {len(keys)}, orders: {len(orders)}, orders without a key: {len(orphans)}, "
              f"keys with more than one order: {len(referenced) - len(set(referenced))}")
        if lost:
            print(f"  LOST acknowledged orders: {lost[:5]}")
        if lost_events:
            print(f"  LOST acknowledged events: {lost_events[:5]}")
        return ok


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def print_calls(stats, report):
    report.update({"calls": stats.calls, "retries": stats.retries, "timeouts": stats.timeouts,
                   "call_p50_s": round(percentile(stats.latencies, 0.5), 4),
                   "call_max_s": round(max(stats.latencies, default=0), 3)})
    print(f"  calls answered: {sum(stats.calls.values())} ({', '.join(f'{m} {n}' for m, n in sorted(stats.calls.items()))}); "
          f"retried after -32007: {stats.retries['-32007']}, -32008: {stats.retries['-32008']}, "
          f"connection loss: {stats.retries['connection']}")
    print(f"  call time: median {percentile(stats.latencies, 0.5) * 1000:.1f} ms, slowest {max(stats.latencies, default=0):.2f} s; "
          f"calls with no answer within their {stats_timeout} s timeout: {stats.timeouts}")
    for error in stats.errors:
        print(f"  ERROR {error}")


stats_timeout = 0


def writers_run(world, stats, clients, give_up_on_loss=False, pace=0.0):
    stop = threading.Event()
    state = {"deadline": float("inf")}
    writers = [Writer(world, i, stats, stop, lambda: state["deadline"], give_up_on_loss, pace) for i in range(clients)]
    for w in writers:
        w.start()
    return writers, stop, state


def finish(writers, stop, state, grace=30):
    stop.set()
    state["deadline"] = now() + grace
    for w in writers:
        w.join(grace + 15)
    hung = [w.index for w in writers if w.is_alive()]
    for w in writers:
        w.client.close()
        w.factory.close()
    return hung


def scenario_restarts(world, args, report):
    print(f"restarts: PostgreSQL restarted {args.restarts} times under write load ({args.clients} clients)")
    stats = Stats()
    started = now()
    writers, stop, state = writers_run(world, stats, args.clients)
    probe = Client(world.port, world.ca, world.admin_key, world.timeout)
    gaps, modes, outages = [], [], []
    time.sleep(args.load_seconds)
    for i in range(args.restarts):
        mode = "fast" if i % 2 == 0 else "immediate"
        modes.append(mode)
        down = now()
        world.pg_ctl("restart", "-m", mode, "-w", "-t", "60")
        back = now()   # pg_ctl -w returns once PostgreSQL accepts connections
        outages.append(back - down)
        answered = None
        while now() - back < 10:
            try:
                if probe.sock is None:
                    probe.connect()
                response = probe.call("dealer.list", {"limit": 1})
                if "result" in response:
                    answered = now()   # when the answer arrived, not when the call was sent
                    break
            except (ConnectionLost, CallTimeout, OSError, RuntimeError):
                pass
            time.sleep(0.02)
        gap = (answered - back) if answered is not None else float("inf")
        gaps.append(gap)
        time.sleep(max(0.0, args.load_seconds - (now() - back)))
    hung = finish(writers, stop, state)
    probe.close()
    alive = world.server.poll() is None
    print_calls(stats, report)
    print(f"  pg_ctl restart (down to accepting connections again): median {percentile(outages, 0.5):.2f} s, "
          f"longest {max(outages):.2f} s")
    print(f"  database back -> service answering (a call that reads the database): "
          f"{', '.join(f'{g:.3f} s ({m})' for g, m in zip(gaps, modes))}; max {max(gaps):.3f} s (limit 2 s)")
    print(f"  service: pid {world.server.pid}, {'still running, never restarted' if alive else 'EXITED'}; "
          f"elapsed {now() - started:.1f} s")
    report.update({"restarts": args.restarts, "modes": modes, "gaps_s": [round(g, 3) for g in gaps],
                   "restart_s": [round(o, 2) for o in outages],
                   "service_restarted": not alive, "clients_hung": hung})
    ok = world.check_writes(writers, report)
    ok = ok and alive and not hung and stats.timeouts == 0 and max(gaps) < 2.0 and not stats.errors
    return ok


def notifications(world):
    rows = world.psql(
        f"SELECT n.id, n.status FROM forecourt.notifications n JOIN forecourt.dealers d ON d.dealer_group_id = n.dealer_group_id "
        f"JOIN forecourt.orders o ON o.dealer_group_id = n.dealer_group_id AND o.id = n.order_id AND d.id = o.dealer_id "
        f"WHERE d.code LIKE '{world.code}%'")
    return {row[0]: row[1] for row in rows}


def relay_messages(args):
    ids = []
    for name in os.listdir(args.relay_out):
        if name.endswith(".json"):
            with open(os.path.join(args.relay_out, name)) as f:
                ids.append(json.load(f)["notification"])
    return ids


def scenario_kill(world, args, report):
    print(f"kill: forecourt serve killed with SIGKILL under write load ({args.clients} clients), then started again")
    stats = Stats()
    # Paced (about 30 orders a second per client): every order queues an email, and the relay
    # (aiosmtpd, one message at a time) is what the check waits for.
    writers, stop, state = writers_run(world, stats, args.clients, pace=0.03)
    time.sleep(args.load_seconds)
    killed_pid = world.server.pid
    world.server.send_signal(signal.SIGKILL)
    world.server.wait()
    pending_at_kill = sum(1 for s in notifications(world).values() if s == "pending")
    acked_before = sum(len(w.acked_orders) for w in writers)
    time.sleep(0.5)
    world.start_server()
    restarted = now()
    time.sleep(args.load_seconds)
    hung = finish(writers, stop, state)
    load_ended = now()
    print_calls(stats, report)
    ok = world.check_writes(writers, report)
    # The outbox: every order's confirmation is sent after the restart, each at most twice.
    deadline = now() + 120
    while now() < deadline:
        states = notifications(world)
        if states and all(s != "pending" for s in states.values()):
            break
        time.sleep(0.2)
    states = notifications(world)
    sent = sum(1 for s in states.values() if s == "sent")
    received = [i for i in relay_messages(args) if i in states]
    twice = len(received) - len(set(received))
    print(f"  killed pid {killed_pid} with {acked_before} orders acknowledged; started pid {world.server.pid}, "
          f"load went on for {load_ended - restarted:.1f} s; every notification handled {now() - restarted:.1f} s after the start")
    print(f"  outbox: {pending_at_kill} notifications pending when killed; after the restart {sent}/{len(states)} sent, "
          f"{len(set(received))} distinct received by the relay, {twice} received twice (at most 1: the one in flight)")
    report.update({"pending_at_kill": pending_at_kill, "notifications": len(states), "sent": sent,
                   "received_twice": twice, "clients_hung": hung})
    return ok and not hung and stats.timeouts == 0 and sent == len(states) and len(set(received)) == len(states) \
        and twice <= 1 and pending_at_kill > 0 and not stats.errors


def scenario_term(world, args, report):
    print(f"term: SIGTERM to forecourt serve under write load ({args.clients} clients)")
    stats = Stats()
    writers, stop, state = writers_run(world, stats, args.clients, give_up_on_loss=True)
    time.sleep(args.load_seconds)
    signalled = now()
    world.server.send_signal(signal.SIGTERM)
    try:
        code = world.server.wait(30)
    except subprocess.TimeoutExpired:
        code = None
    exited = now() - signalled
    stop.set()
    hung = finish(writers, stop, state, grace=5)
    answered_after = sum(w.answered_after_stop for w in writers)
    unanswered = [(m, p, sent) for w in writers for (m, p, sent) in w.unanswered]
    print_calls(stats, report)
    ok = world.check_writes(writers, report)
    keys = {row[0] for row in world.psql(
        f"SELECT key FROM forecourt.idempotency_keys WHERE key LIKE '{world.tag}-%'")}
    events = {(row[0], row[1]) for row in world.psql(
        "SELECT order_id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
        "FROM forecourt.order_events WHERE event = 'scheduled'")}
    done = [p for (m, p, _) in unanswered
            if (p["idempotency_key"] in keys if m == "order.create" else (p["id"], p["occurred_at"]) in events)]
    # Sent well before the signal (calls take milliseconds here) and never answered: a request
    # the server had read and then dropped, which the shutdown must not do (docs/protocol.md).
    dropped = [p for (m, p, sent) in unanswered if sent < signalled - 1.0]
    print(f"  SIGTERM: exited with status {code} after {exited:.2f} s; {len(unanswered)} requests got no answer "
          f"({len(unanswered) - len(done)} did nothing, {len(done)} were done), "
          f"{len([1 for (_, _, sent) in unanswered if sent < signalled])} of them sent before the signal, "
          f"{len(dropped)} more than 1 s before it")
    # Started again, the clients' retries of the unanswered requests finish them: one order per key.
    world.start_server()
    client = world.admin()
    factory = Client(world.port, world.ca, world.factory_key, world.timeout)
    factory.connect()
    retried_ok = 0
    for (m, p, _) in unanswered:
        response = (client if m == "order.create" else factory).call(m, p)
        if "result" in response:
            retried_ok += 1
            for w in writers:
                if m == "order.create" and any(k == p["idempotency_key"] for k, _ in w.attempted_keys):
                    w.acked_orders[p["idempotency_key"]] = (response["result"]["id"], response["result"]["order_number"])
    client.close()
    factory.close()
    print(f"  after a new start: {retried_ok}/{len(unanswered)} unanswered requests retried with the same parameters succeed")
    ok = world.check_writes(writers, report) and ok
    report.update({"exit_status": code, "exit_s": round(exited, 2), "unanswered": len(unanswered),
                   "unanswered_done": len(done), "retried_ok": retried_ok})
    report.update({"unanswered_dropped": len(dropped)})
    return ok and code == 0 and not hung and retried_ok == len(unanswered) and not dropped and stats.timeouts == 0 \
        and not stats.errors


def main():
    global stats_timeout
    parser = argparse.ArgumentParser()
    for name in ["forecourt", "database-url", "cert", "key", "ca", "keyring", "migrations", "psql", "pgbin", "pg-data",
                 "pg-log", "admin-key", "factory-key", "relay-out", "server-log"]:
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--scenarios", default="restarts,kill,term")
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--load-seconds", type=float, default=1.5)
    parser.add_argument("--call-timeout", type=float, default=10.0)
    args = parser.parse_args()
    stats_timeout = args.call_timeout
    world = World(args)
    world.start_server()
    world.setup()
    results, failed = {}, []
    for name in args.scenarios.split(","):
        report = {}
        world.begin(name)
        ok = {"restarts": scenario_restarts, "kill": scenario_kill, "term": scenario_term}[name](world, args, report)
        report["ok"] = ok
        results[name] = report
        print(f"  {'PASS' if ok else 'FAIL'}")
        if not ok:
            failed.append(name)
        if world.server.poll() is not None and name != args.scenarios.split(",")[-1]:
            world.start_server()
    if world.server.poll() is None:
        world.server.send_signal(signal.SIGTERM)
        world.server.wait(30)
    print("faults: " + json.dumps(results))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
