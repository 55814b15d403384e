"""A CRM sync loop for Forecourt: pushes the CRM's customers with `customer.upsert_batch` and
pulls Forecourt's changes with `customer.changes`, resuming from a stored cursor and skipping
its own echoes (changes whose `origin` is this integration's principal).

    FORECOURT_CONNECT=127.0.0.1:7443 FORECOURT_CA=ca.pem FORECOURT_API_KEY=fck_... \
        python3 crm_sync.py --state ./crm-state --records crm-export.json [--once]

`--records` is a JSON array of CRM records (`external_ref`, `full_name`, `email`, `phone`,
`address`, `notify`, `source_updated_at`); a real connector would read them from the CRM.
Each cycle prints one JSON line: what was pushed, and the changes made by others.
"""
import argparse
import json
import os
import time

from forecourt import Client

BATCH = 1000  # the most records one upsert_batch takes


def load_cursor(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f).get("next")
    except FileNotFoundError:
        return None


def store_cursor(path, cursor):
    # Written atomically: a crash never leaves a half-written cursor.
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"next": cursor}, f)
    os.replace(path + ".tmp", path)


def push(client, records):
    outcomes = {}
    for start in range(0, len(records), BATCH):
        result = client.call("customer.upsert_batch", {"records": records[start:start + BATCH]})
        for item in result["results"]:
            outcomes[item["outcome"]] = outcomes.get(item["outcome"], 0) + 1
    return outcomes


def pull(client, cursor_file):
    """Follows customer.changes from the stored cursor until nothing more is ready now."""
    me = client.principal["id"]
    cursor = load_cursor(cursor_file)
    changes = []
    while True:
        params = {"limit": 200}
        if cursor:
            params["after"] = cursor
        page = client.call("customer.changes", params)
        for customer in page["items"]:
            if customer.get("origin") == me:
                continue  # our own write coming back: the CRM has it already
            changes.append(customer)
        cursor = page["next"]  # never null: the position to resume from
        store_cursor(cursor_file, cursor)
        if not page["has_more"]:
            return changes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", default="crm-state", help="directory for the stored cursor")
    parser.add_argument("--records", help="JSON file of CRM records to push")
    parser.add_argument("--once", action="store_true", help="run one cycle and exit")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between cycles")
    args = parser.parse_args()
    os.makedirs(args.state, exist_ok=True)
    cursor_file = os.path.join(args.state, "changes-cursor.json")
    records = []
    if args.records:
        with open(args.records, encoding="utf-8") as f:
            records = json.load(f)
    with Client.from_environment() as client:
        while True:
            pushed = push(client, records) if records else {}
            records = []  # pushed once; a real connector sends what changed in the CRM since
            changes = pull(client, cursor_file)
            print(json.dumps({
                "pushed": pushed,
                "changes": [{"id": c["id"], "external_ref": c.get("external_ref"), "erased": c.get("erased", False),
                             "full_name": c.get("full_name")} for c in changes],
            }, ensure_ascii=False), flush=True)
            if args.once:
                return
            time.sleep(args.interval)


if __name__ == "__main__":
    main()
