"""The original backend's Socket.IO live feed at `/socket.io/` (see `server`, `feed`,
`payloads`)."""

from sneakerd.web.socketio.feed import SocketIOFeed
from sneakerd.web.socketio.server import FEED, SERVER, setup

__all__ = ["FEED", "SERVER", "SocketIOFeed", "setup"]
