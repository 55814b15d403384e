#!/usr/bin/env python3
"""Writes the seed corpus and the dictionary of the fuzz target (Tests/Fuzz/corpus, scripts/fuzz): for every method
of docs/openrpc.json one request line with its required parameters and one with all of them
(example values from the schemas), and the framing and JSON cases of docs/protocol.md that a
mutator would take long to find (CRLF, blank lines, batches, an over-long line, escapes, deep
nesting, big numbers). Run from the repository's root; the output is committed."""
import json
import os
import shutil

OUT = "Tests/Fuzz/corpus"
DICTIONARY = "Tests/Fuzz/forecourt.dict"
TOKENS = ["{", "}", "[", "]", ":", ",", '"', "\\u", "\\ud800", "\\udc00", "\\n", '\\"', "true", "false", "null", "-0",
          "1e999", "0.0", "\r\n", "\n", '"jsonrpc"', '"2.0"', '"id"', '"method"', '"params"']


def dictionary_entry(value):
    """libFuzzer's dictionary syntax: printable ASCII with \\ and \" escaped, the rest \xAB."""
    out = ""
    for byte in value.encode():
        char = chr(byte)
        out += "\\" + char if char in '\\"' else char if 32 <= byte < 127 else f"\\x{byte:02X}"
    return f'"{out}"'


def names(methods):
    """Every method name and every parameter or member name the schemas declare."""
    members = set()

    def walk(node):
        if isinstance(node, dict):
            members.update(node.get("properties", {}).keys())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    for method in methods:
        members.update(p["name"] for p in method.get("params", []))
        walk(method.get("params", []))
    return sorted(m["name"] for m in methods), sorted(members)


def example(schema):
    if "examples" in schema:
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return example(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "string":
        return {"uuid": "0b7d4c2e-5f1a-4c3b-9d8e-7f6a5b4c3d2e", "date-time": "2026-12-03T10:15:30.250Z",
                "date": "2026-12-03"}.get(schema.get("format"), "ABC123" if schema.get("maxLength", 8) < 20 else "a value")
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        return [example(schema.get("items", {"type": "string"}))]
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example(sub) for name, sub in properties.items()}
    return "x"


def request(number, method, params):
    return json.dumps({"jsonrpc": "2.0", "id": number, "method": method, "params": params}, ensure_ascii=False) + "\n"


def main():
    with open("docs/openrpc.json") as f:
        methods = json.load(f)["methods"]
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    files = {}
    for number, method in enumerate(methods, 1):
        params = method.get("params", [])
        required = {p["name"]: example(p["schema"]) for p in params if p.get("required")}
        everything = {p["name"]: example(p["schema"]) for p in params}
        files[f"{method['name']}.required"] = request(number, method["name"], required)
        if everything != required:
            files[f"{method['name']}.all"] = request(number, method["name"], everything)
    files.update({
        "framing.crlf-blank-lines": '\r\n  \t\n{"jsonrpc":"2.0","id":1,"method":"system.ping"}\r\n\n{"jsonrpc":"2.0","method":"system.ping"}',
        "framing.long-line": '{"jsonrpc":"2.0","id":1,"method":"system.ping","params":{"x":"' + "a" * 2100 + '"}}\n',
        "batch.mixed": '[{"jsonrpc":"2.0","id":1,"method":"system.ping"},{"jsonrpc":"2.0","id":"b","method":"order.get",'
                       '"params":{"order_number":"D1-000001"}},{"jsonrpc":"2.0","method":"nope"},1,[]]\n',
        "json.escapes": '{"jsonrpc":"2.0","id":1,"method":"dealer.create","params":{"code":"A\\u00e9\\ud83d\\ude97\\n\\"",'
                        '"name":"\\ud800 lone","timezone":"Europe/Oslo"}}\n',
        "json.numbers": '{"jsonrpc":"2.0","id":-0,"method":"order.list","params":{"limit":1e2,"after":null,'
                        '"x":[0,-0.0,1E400,9007199254740993,1.5e-999,-12345678901234567890]}}\n',
        "json.deep": '{"jsonrpc":"2.0","id":1,"method":"customer.create","params":' + "[" * 70 + "]" * 70 + "}\n",
        "json.duplicate": '{"jsonrpc":"2.0","id":1,"id":2,"method":"system.ping","params":{"a":1,"a":2}}\n',
    })
    for name, text in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(text.encode("utf-8", "surrogatepass"))
    method_names, members = names(methods)
    entries = TOKENS + [f'"{n}"' for n in method_names + members]
    with open(DICTIONARY, "w") as f:
        f.write("# The libFuzzer dictionary of scripts/fuzz (written by Tests/Fuzz/make_corpus.py): JSON tokens,\n"
                "# the envelope's members, every method and parameter name of docs/openrpc.json.\n")
        for value in entries:
            f.write(dictionary_entry(value) + "\n")
    print(f"{len(files)} seeds in {OUT}, {len(entries)} entries in {DICTIONARY}")


if __name__ == "__main__":
    main()
