"""Checks an OpenRPC document served by Forecourt (rpc.discover) against the OpenRPC meta-schema
and against the committed docs/openrpc.json.

    openrpc_check.py SERVED.json COMMITTED.json           check; exit 1 with reasons
    openrpc_check.py SERVED.json COMMITTED.json --update  write COMMITTED from SERVED, then check

The meta-schema comes from a PyPI package, not from a file in this repository: the `openrpc`
package models the OpenRPC 1.x specification as pydantic classes, and pydantic turns
`OpenRPC` into its JSON Schema, which `jsonschema` then applies. A few rules of the
specification that a generated schema cannot state (the `openrpc` version pattern, unique
method and parameter names) are checked here too, plus this service's own `x-roles`.
"""
import json
import re
import sys

import jsonschema
from openrpc import OpenRPC

ROLES = {"group_admin", "dealer_manager", "sales", "crm_sync", "auditor", "factory", "portal"}


def problems(document):
    meta = OpenRPC.model_json_schema(by_alias=True)
    validator = jsonschema.Draft202012Validator(meta)
    found = [f"meta-schema: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    if not re.fullmatch(r"1\.\d+\.\d+", str(document.get("openrpc", ""))):
        found.append("openrpc is not a 1.x version")
    names = [m.get("name") for m in document.get("methods", [])]
    if len(names) != len(set(names)):
        found.append("method names repeat")
    for method in document.get("methods", []):
        params = [p.get("name") for p in method.get("params", [])]
        if len(params) != len(set(params)):
            found.append(f"{method.get('name')}: parameter names repeat")
        roles = method.get("x-roles")
        if not roles or not set(roles) <= ROLES:
            found.append(f"{method.get('name')}: x-roles missing or unknown")
        for schema in [p.get("schema") for p in method.get("params", [])] + [method.get("result", {}).get("schema")]:
            try:
                jsonschema.Draft7Validator.check_schema(schema)
            except jsonschema.SchemaError as error:
                found.append(f"{method.get('name')}: not a JSON Schema: {error.message}")
    return found


def main():
    served_path, committed_path = sys.argv[1], sys.argv[2]
    with open(served_path, encoding="utf-8") as f:
        served = json.load(f)
    if "--update" in sys.argv[3:]:
        with open(committed_path, "w", encoding="utf-8") as f:
            json.dump(served, f, indent=2, ensure_ascii=False)
            f.write("\n")
    with open(committed_path, encoding="utf-8") as f:
        committed = json.load(f)
    found = problems(served)
    if served != committed:
        found.append(
            f"{committed_path} differs from what rpc.discover serves: "
            "regenerate it with FORECOURT_UPDATE_OPENRPC=1 scripts/test --filter OpenRPCTests")
    for line in found:
        print(line)
    if found:
        sys.exit(1)
    print(f"OpenRPC document valid: {len(served['methods'])} methods, same as {committed_path}")


if __name__ == "__main__":
    main()
