// Every module that declares or serves methods speaks in `JSON` and the message types, which
// live in `JSONRPC` so that the client library can share them without the dispatcher.
@_exported import JSONRPC
