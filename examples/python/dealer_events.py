"""Prints a dealer's order updates as they happen (`events.subscribe`).

    FORECOURT_CONNECT=127.0.0.1:7443 FORECOURT_CA=ca.pem FORECOURT_API_KEY=fck_... \
        python3 dealer_events.py [--dealer ID] [--max N] [--timeout SECONDS]

One line per update: order number, stage, hold, ETA, and the timeline event that caused it.
`events.dropped` (the connection fell behind) and `events.resync` (the service lost its
database notifications for a while) mean: re-read what you show with `order.list`.
"""
import argparse
import json

from forecourt import Client


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dealer", help="only this dealer's orders")
    parser.add_argument("--max", type=int, help="exit after this many order updates")
    parser.add_argument("--timeout", type=float, help="exit when nothing arrives for this many seconds")
    args = parser.parse_args()
    with Client.from_environment() as client:
        params = {"dealer_id": args.dealer} if args.dealer else {}
        subscription = client.call("events.subscribe", params)["subscription"]
        print(json.dumps({"subscribed": subscription}), flush=True)
        seen = 0
        while args.max is None or seen < args.max:
            push = client.next_push(timeout=args.timeout)
            if push is None:
                break
            method, body = push["method"], push.get("params", {})
            if method == "order.updated":
                seen += 1
                order, event = body["order"], body.get("event") or {}
                print(json.dumps({
                    "order_number": order["order_number"], "stage": order["stage"], "on_hold": order["on_hold"],
                    "eta": order["eta"], "delayed": order["delayed"], "event": event.get("event"),
                    "late": event.get("late", False),
                }), flush=True)
            elif method in ("events.dropped", "events.resync"):
                print(json.dumps({"notice": method, "params": body}), flush=True)


if __name__ == "__main__":
    main()
