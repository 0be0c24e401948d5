-- sneakerd schema for MySQL 8 / MariaDB 10.5+ (InnoDB, utf8mb4). Idempotent: `sneakerd db init`
-- runs it on every start-up. Times are UTC DATETIME(3). Reservation and purchase ids are handed
-- out by the application in blocks (id_blocks), so a batch knows its ids before it commits and
-- nothing depends on innodb_autoinc_lock_mode.

CREATE TABLE IF NOT EXISTS schema_version (
  version INT NOT NULL PRIMARY KEY
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS users (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  username VARCHAR(32) NOT NULL,
  -- The account identity (sneakerd.domain.accounts), compared byte for byte: the table's
  -- unicode_ci collation would fold accents and make dávid@ and david@ one address.
  email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  password_hash VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  role VARCHAR(16) NOT NULL DEFAULT 'customer',
  created_at DATETIME(3) NOT NULL,
  UNIQUE KEY uq_users_email (email),
  UNIQUE KEY uq_users_username (username),
  CONSTRAINT chk_users_role CHECK (role IN ('customer', 'admin'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS drops (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(200) NOT NULL,
  brand VARCHAR(100) NULL,
  description TEXT NULL,
  price DECIMAL(12, 2) NOT NULL,
  image_url VARCHAR(2048) NULL,
  initial_stock INT UNSIGNED NOT NULL,
  stock INT UNSIGNED NOT NULL,
  reserved INT UNSIGNED NOT NULL DEFAULT 0,
  sold INT UNSIGNED NOT NULL DEFAULT 0,
  per_user_limit INT UNSIGNED NOT NULL DEFAULT 1,
  holds_per_user INT UNSIGNED NOT NULL DEFAULT 3,
  paused BOOLEAN NOT NULL DEFAULT FALSE,
  queue TINYINT(1) NOT NULL DEFAULT 0,
  starts_at DATETIME(3) NOT NULL,
  ends_at DATETIME(3) NULL,
  version BIGINT UNSIGNED NOT NULL DEFAULT 1,
  created_at DATETIME(3) NOT NULL,
  updated_at DATETIME(3) NOT NULL,
  deleted_at DATETIME(3) NULL,
  -- A raffle drop (mode 'raffle'): its entry window, how long a win is held, and its draw
  -- (sneakerd/domain/raffle.py). The seed is secret until raffle_drawn_at; entries_digest is
  -- set at the close, and a batch that adds entries commits only while it is NULL.
  mode VARCHAR(8) NOT NULL DEFAULT 'fcfs',
  entries_open_at DATETIME(3) NULL,
  entries_close_at DATETIME(3) NULL,
  claim_seconds INT UNSIGNED NOT NULL DEFAULT 600,
  raffle_seed CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  entries_digest CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  raffle_drawn_at DATETIME(3) NULL,
  raffle_winners INT UNSIGNED NOT NULL DEFAULT 0,
  raffle_entries INT UNSIGNED NOT NULL DEFAULT 0,
  KEY idx_drops_window (deleted_at, starts_at),
  KEY idx_drops_created (deleted_at, created_at),
  CONSTRAINT chk_drops_units CHECK (stock + reserved + sold = initial_stock),
  CONSTRAINT chk_drops_limit CHECK (per_user_limit >= 1),
  CONSTRAINT chk_drops_holds CHECK (holds_per_user >= 1),
  CONSTRAINT chk_drops_mode CHECK (mode IN ('fcfs', 'raffle'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS reservations (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  drop_id BIGINT UNSIGNED NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  status VARCHAR(16) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  created_at DATETIME(3) NOT NULL,
  ended_at DATETIME(3) NULL,
  KEY idx_reservations_drop_status (drop_id, status, expires_at),
  KEY idx_reservations_user (user_id, created_at),
  CONSTRAINT fk_reservations_drop FOREIGN KEY (drop_id) REFERENCES drops (id),
  CONSTRAINT fk_reservations_user FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT chk_reservations_status
    CHECK (status IN ('active', 'expired', 'cancelled', 'completed'))
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS purchases (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  drop_id BIGINT UNSIGNED NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  reservation_id BIGINT UNSIGNED NOT NULL,
  price DECIMAL(12, 2) NOT NULL,
  created_at DATETIME(3) NOT NULL,
  UNIQUE KEY uq_purchases_reservation (reservation_id),
  KEY idx_purchases_user (user_id, created_at),
  KEY idx_purchases_drop (drop_id, created_at),
  CONSTRAINT fk_purchases_drop FOREIGN KEY (drop_id) REFERENCES drops (id),
  CONSTRAINT fk_purchases_user FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT fk_purchases_reservation FOREIGN KEY (reservation_id) REFERENCES reservations (id)
) ENGINE=InnoDB;

-- A raffle drop's entries: one per user and drop. Ids come from id_blocks, as holds' do.
CREATE TABLE IF NOT EXISTS raffle_entries (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  drop_id BIGINT UNSIGNED NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  created_at DATETIME(3) NOT NULL,
  UNIQUE KEY uq_raffle_entries_user (drop_id, user_id),
  KEY idx_raffle_entries_drop (drop_id, id),
  CONSTRAINT fk_raffle_entries_drop FOREIGN KEY (drop_id) REFERENCES drops (id),
  CONSTRAINT fk_raffle_entries_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB;

-- Several nodes: each node's heartbeat, and which node owns each drop. A takeover raises the
-- epoch, and every commit of a drop's actor checks it (the fence): see sneakerd/store/leases.py.
CREATE TABLE IF NOT EXISTS cluster_nodes (
  id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  url VARCHAR(255) NOT NULL,
  seen_at DATETIME(3) NOT NULL
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS drop_leases (
  drop_id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  owner VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  epoch BIGINT UNSIGNED NOT NULL,
  lease_until DATETIME(3) NOT NULL,
  CONSTRAINT fk_leases_drop FOREIGN KEY (drop_id) REFERENCES drops (id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS id_blocks (
  name VARCHAR(32) NOT NULL PRIMARY KEY,
  next_id BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB;

-- One row per (user, Idempotency-Key): the first answer, replayed for a repeat. Keys compare
-- byte for byte (ascii_bin): `abc` and `ABC` are two keys. `fingerprint` is a digest of the
-- request that used the key, so the same key with another request is refused. A success recorded
-- with its act (in the batch's commit) has `ref_id` and no `status_code`: the store knows no HTTP.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  user_id BIGINT UNSIGNED NOT NULL,
  idem_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  request VARCHAR(64) NOT NULL,
  fingerprint CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
  status_code SMALLINT UNSIGNED NULL,
  body MEDIUMTEXT NOT NULL,
  ref_id BIGINT UNSIGNED NULL,
  created_at DATETIME(3) NOT NULL,
  PRIMARY KEY (user_id, idem_key),
  KEY idx_idempotency_created (created_at),
  CONSTRAINT fk_idempotency_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB;

-- Who changed a drop, how, and the drop before and after (JSON text, the API's drop fields).
-- Written in the commit of the write it records; never updated. No foreign key: an entry
-- outlives anything that happens to its drop. drop_id 0: an entry about no drop (a webhook,
-- an account).
CREATE TABLE IF NOT EXISTS audit_log (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  at DATETIME(3) NOT NULL,
  actor VARCHAR(64) NOT NULL,
  action VARCHAR(16) NOT NULL,
  drop_id BIGINT UNSIGNED NOT NULL,
  before_json MEDIUMTEXT NULL,
  after_json MEDIUMTEXT NULL,
  KEY idx_audit_at (at),
  KEY idx_audit_drop (drop_id, at),
  CONSTRAINT chk_audit_action
    CHECK (action IN ('create', 'update', 'pause', 'unpause', 'delete', 'restock',
      'add_webhook', 'remove_webhook', 'create_user', 'set_role'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A drop's waiting room: one ticket per (drop, user). position_key orders the line: a random key
-- drawn at join before startsAt (below 2^62), then arrival order (2^62 and up).
CREATE TABLE IF NOT EXISTS queue_tickets (
  drop_id BIGINT UNSIGNED NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  position_key BIGINT UNSIGNED NOT NULL,
  joined_at DATETIME(3) NOT NULL,
  admitted_at DATETIME(3) NULL,
  admission_expires_at DATETIME(3) NULL,
  done_at DATETIME(3) NULL,
  PRIMARY KEY (drop_id, user_id),
  KEY idx_queue_order (drop_id, position_key),
  CONSTRAINT fk_queue_drop FOREIGN KEY (drop_id) REFERENCES drops (id),
  CONSTRAINT fk_queue_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB;

-- Webhooks (docs/webhooks.md). `webhook_events` is the outbox: each drop's actor writes its
-- batch's events in the batch's own transaction; ids rise in commit order within a drop (one
-- writer per drop) and are the events' stable ids. `webhook_deliveries` holds one row per
-- (event, webhook) with its state; the deliverer reads each (webhook, drop)'s lowest pending
-- event through idx_deliveries_heads.
CREATE TABLE IF NOT EXISTS webhooks (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  url VARCHAR(2048) NOT NULL,
  secret VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  events VARCHAR(512) NOT NULL DEFAULT '',
  enabled TINYINT NOT NULL DEFAULT 1,
  created_at DATETIME(3) NOT NULL
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS webhook_events (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  drop_id BIGINT UNSIGNED NOT NULL,
  drop_version BIGINT UNSIGNED NOT NULL,
  type VARCHAR(32) NOT NULL,
  created_at DATETIME(3) NOT NULL,
  data MEDIUMTEXT NOT NULL,
  fanned_out TINYINT NOT NULL DEFAULT 0,
  KEY idx_webhook_events_fan (fanned_out, id),
  KEY idx_webhook_events_drop (drop_id, id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id BIGINT UNSIGNED NOT NULL,
  webhook_id BIGINT UNSIGNED NOT NULL,
  drop_id BIGINT UNSIGNED NOT NULL,
  state VARCHAR(16) NOT NULL DEFAULT 'pending',
  attempts INT UNSIGNED NOT NULL DEFAULT 0,
  next_attempt_at DATETIME(3) NOT NULL,
  first_attempt_at DATETIME(3) NULL,
  last_status SMALLINT UNSIGNED NULL,
  last_error VARCHAR(255) NULL,
  delivered_at DATETIME(3) NULL,
  created_at DATETIME(3) NOT NULL,
  UNIQUE KEY uq_deliveries_event (event_id, webhook_id),
  KEY idx_deliveries_heads (state, webhook_id, drop_id, event_id),
  KEY idx_deliveries_created (created_at, id),
  CONSTRAINT chk_deliveries_state CHECK (state IN ('pending', 'delivered', 'dead'))
) ENGINE=InnoDB;

INSERT INTO id_blocks (name, next_id) VALUES ('reservations', 1), ('purchases', 1),
  ('raffle_entries', 1) ON DUPLICATE KEY UPDATE name = name;
INSERT INTO schema_version (version) VALUES (7) ON DUPLICATE KEY UPDATE version = version;
