"""A cap on how many things (connections, WebSockets) one client address holds at once.

Counts live in memory, one integer per address that holds at least one; an address is
forgotten when its last one is released, so memory follows what is open, not who ever came.
"""

from __future__ import annotations


class PerAddressCap:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        """0 turns the cap off."""
        self._held: dict[str, int] = {}

    def acquire(self, address: str | None) -> bool:
        """Take one for `address`; False (and nothing taken) when it already holds `limit`."""
        if not self.limit or address is None:
            return True
        held = self._held.get(address, 0)
        if held >= self.limit:
            return False
        self._held[address] = held + 1
        return True

    def release(self, address: str | None) -> None:
        """Give back one taken by a successful `acquire(address)`."""
        if not self.limit or address is None:
            return
        held = self._held.get(address, 0) - 1
        if held > 0:
            self._held[address] = held
        else:
            self._held.pop(address, None)

    def held(self, address: str) -> int:
        return self._held.get(address, 0)
