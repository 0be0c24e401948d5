"""Running drops on many processes and nodes.

`wire` turns commands, replies, errors and events into JSON and back without loss, so that a
write can be decided by the node that owns its drop and its events can reach every other node;
`peers` carries forwarded writes between nodes over one authenticated WebSocket per peer.
"""
