"""Utilities every layer above the contracts shares: config reading and the strict base model, the on-disk cache
(its folder passed in), the HTTP server and child processes that end with their parent."""
