"""Drops on many processes and nodes: who owns each drop (`ownership`, `placement`), forwarding
writes to the owner (`peers`, `wire`), events and rate limits shared over Redis (`bus`,
`limits`), and `serve --workers N` (`workers`)."""
