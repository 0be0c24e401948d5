"""Running drops on many processes and nodes: the parts that talk to other nodes."""
