"""Many processes and nodes: each module here owns one part of running drops on several nodes."""
