// RPC module.
