-- sneakerd schema for the embedded SQLite store: the same tables and columns as schema.sql.
-- Times are INTEGER epoch milliseconds (UTC); prices are TEXT decimals.

CREATE TABLE IF NOT EXISTS schema_version (
  version INTEGER NOT NULL PRIMARY KEY
);

CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY,
  username TEXT NOT NULL COLLATE NOCASE UNIQUE,
  email TEXT NOT NULL UNIQUE, -- the account identity, compared byte for byte (BINARY)
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'admin')),
  created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS drops (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  brand TEXT NULL,
  description TEXT NULL,
  price TEXT NOT NULL,
  image_url TEXT NULL,
  initial_stock INTEGER NOT NULL CHECK (initial_stock >= 0),
  stock INTEGER NOT NULL CHECK (stock >= 0),
  reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
  sold INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),
  per_user_limit INTEGER NOT NULL DEFAULT 1 CHECK (per_user_limit >= 1),
  holds_per_user INTEGER NOT NULL DEFAULT 3 CHECK (holds_per_user >= 1),
  paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
  queue INTEGER NOT NULL DEFAULT 0,
  starts_at INTEGER NOT NULL,
  ends_at INTEGER NULL,
  version INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER NULL,
  -- A raffle drop: see mysql.sql.
  mode TEXT NOT NULL DEFAULT 'fcfs' CHECK (mode IN ('fcfs', 'raffle')),
  entries_open_at INTEGER NULL,
  entries_close_at INTEGER NULL,
  claim_seconds INTEGER NOT NULL DEFAULT 600,
  raffle_seed TEXT NULL,
  entries_digest TEXT NULL,
  raffle_drawn_at INTEGER NULL,
  raffle_winners INTEGER NOT NULL DEFAULT 0,
  raffle_entries INTEGER NOT NULL DEFAULT 0,
  CHECK (stock + reserved + sold = initial_stock)
);
CREATE INDEX IF NOT EXISTS idx_drops_window ON drops (deleted_at, starts_at);
CREATE INDEX IF NOT EXISTS idx_drops_created ON drops (deleted_at, created_at);

CREATE TABLE IF NOT EXISTS reservations (
  id INTEGER PRIMARY KEY,
  drop_id INTEGER NOT NULL REFERENCES drops (id),
  user_id INTEGER NOT NULL REFERENCES users (id),
  status TEXT NOT NULL CHECK (status IN ('active', 'expired', 'cancelled', 'completed')),
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  ended_at INTEGER NULL
);
CREATE INDEX IF NOT EXISTS idx_reservations_drop_status
  ON reservations (drop_id, status, expires_at);
CREATE INDEX IF NOT EXISTS idx_reservations_user ON reservations (user_id, created_at);

CREATE TABLE IF NOT EXISTS purchases (
  id INTEGER PRIMARY KEY,
  drop_id INTEGER NOT NULL REFERENCES drops (id),
  user_id INTEGER NOT NULL REFERENCES users (id),
  reservation_id INTEGER NOT NULL UNIQUE REFERENCES reservations (id),
  price TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_purchases_user ON purchases (user_id, created_at);
CREATE INDEX IF NOT EXISTS idx_purchases_drop ON purchases (drop_id, created_at);

-- Several nodes (not on SQLite, which serves one process; the tables keep one schema).
CREATE TABLE IF NOT EXISTS cluster_nodes (
  id TEXT NOT NULL PRIMARY KEY,
  url TEXT NOT NULL,
  seen_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS drop_leases (
  drop_id INTEGER NOT NULL PRIMARY KEY REFERENCES drops (id),
  owner TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  lease_until INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS raffle_entries (
  id INTEGER PRIMARY KEY,
  drop_id INTEGER NOT NULL REFERENCES drops (id),
  user_id INTEGER NOT NULL REFERENCES users (id),
  created_at INTEGER NOT NULL,
  UNIQUE (drop_id, user_id)
);
CREATE INDEX IF NOT EXISTS idx_raffle_entries_drop ON raffle_entries (drop_id, id);

CREATE TABLE IF NOT EXISTS id_blocks (
  name TEXT NOT NULL PRIMARY KEY,
  next_id INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
  user_id INTEGER NOT NULL REFERENCES users (id),
  idem_key TEXT NOT NULL,
  request TEXT NOT NULL,
  fingerprint TEXT NOT NULL DEFAULT '',
  status_code INTEGER, -- NULL for a success recorded with its act (ref_id names it)
  body TEXT NOT NULL,
  ref_id INTEGER,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, idem_key)
);
CREATE INDEX IF NOT EXISTS idx_idempotency_created ON idempotency_keys (created_at);

CREATE TABLE IF NOT EXISTS audit_log (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL
    CHECK (action IN ('create', 'update', 'pause', 'unpause', 'delete', 'restock',
      'add_webhook', 'remove_webhook', 'create_user', 'set_role')),
  drop_id INTEGER NOT NULL,
  before_json TEXT NULL,
  after_json TEXT NULL
);
CREATE INDEX IF NOT EXISTS idx_audit_at ON audit_log (at);
CREATE INDEX IF NOT EXISTS idx_audit_drop ON audit_log (drop_id, at);

-- A drop's waiting room: one ticket per (drop, user); position_key orders the line.
CREATE TABLE IF NOT EXISTS queue_tickets (
  drop_id INTEGER NOT NULL REFERENCES drops (id),
  user_id INTEGER NOT NULL REFERENCES users (id),
  position_key INTEGER NOT NULL,
  joined_at INTEGER NOT NULL,
  admitted_at INTEGER NULL,
  admission_expires_at INTEGER NULL,
  done_at INTEGER NULL,
  PRIMARY KEY (drop_id, user_id)
);
CREATE INDEX IF NOT EXISTS idx_queue_order ON queue_tickets (drop_id, position_key);

-- Webhooks: see mysql.sql.
CREATE TABLE IF NOT EXISTS webhooks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  url TEXT NOT NULL,
  secret TEXT NOT NULL,
  events TEXT NOT NULL DEFAULT '',
  enabled INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  drop_id INTEGER NOT NULL,
  drop_version INTEGER NOT NULL,
  type TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  data TEXT NOT NULL,
  fanned_out INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_webhook_events_fan ON webhook_events (fanned_out, id);
CREATE INDEX IF NOT EXISTS idx_webhook_events_drop ON webhook_events (drop_id, id);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id INTEGER NOT NULL,
  webhook_id INTEGER NOT NULL,
  drop_id INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  first_attempt_at INTEGER,
  last_status INTEGER,
  last_error TEXT,
  delivered_at INTEGER,
  created_at INTEGER NOT NULL,
  UNIQUE (event_id, webhook_id)
);
CREATE INDEX IF NOT EXISTS idx_deliveries_heads
  ON webhook_deliveries (state, webhook_id, drop_id, event_id);
CREATE INDEX IF NOT EXISTS idx_deliveries_created ON webhook_deliveries (created_at, id);

INSERT OR IGNORE INTO id_blocks (name, next_id) VALUES ('reservations', 1), ('purchases', 1),
  ('raffle_entries', 1);
INSERT OR IGNORE INTO schema_version (version) VALUES (7);
