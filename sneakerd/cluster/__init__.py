"""Drops on many processes and nodes: who owns each drop, forwarding writes to it, events and
rate limits shared over Redis, and `serve --workers N`."""
