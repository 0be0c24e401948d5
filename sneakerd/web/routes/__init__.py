"""The routes: one module per resource of docs/API.md's REST table (`users`, `drops`,
`reservations`, `purchases`, `live` for the WebSocket), `ops` for operators, `pages` for the shop
window, and what they share: `common` (who asks, path ids, error docs) and `front` (the one front
of reserve and purchase)."""
