"""Reference servers speaking sneakerd's POST /api/reservations (for `loadtest compare`)."""
