/* `/drops/{id}`: one drop selling live, and the shopper's hold and purchases in it.
 *
 * The page paints from GET /api/drops/{id} first (and says plainly when the drop does not
 * exist), then follows the drop's WebSocket, taking each snapshot as the whole truth and each
 * later frame only if its seq is new. When a countdown reaches zero the drop's status in hand
 * is out of date; the page asks the server for the drop again rather than deciding itself.
 */

import { ActivityFeed } from "./activity.js";
import { api } from "./api.js";
import { serverNow, toLocal } from "./clock.js";
import { $, setNetbar } from "./dom.js";
import { message, render, renderClock, renderHold, renderStock } from "./drop-render.js";
import { isDue, withCounts } from "./drop-status.js";
import { Follower, backoff } from "./follower.js";
import { Shopper } from "./holds.js";
import { RafflePanel } from "./raffle-panel.js";
import { QueueSpot } from "./queue.js";
import { getSession, onSessionChange } from "./session.js";
import { openSignIn } from "./signin-dialog.js";
import { messageFor } from "./words.js";

const TICK_MS = 250;
const CHECK_AFTER_RETRIES = 3; // a drop removed while we were away refuses the upgrade

function dropIdOf(path) {
  const match = path.match(/^\/drops\/(\d+)\/?$/);
  return match ? Number(match[1]) : NaN;
}

class DropPage {
  constructor(dropId) {
    this.dropId = dropId;
    this.state = {
      drop: null,
      seq: -1,
      missing: false,
      removed: false,
      hold: null, // { id, deadline (local ms), total }
      otherHolds: 0, // active holds of mine in this drop besides `hold` (another tab, say)
      bought: 0,
      lastPurchase: null,
      busy: false,
      conn: "connecting",
      reserveKey: null,
      buyKey: null,
      ticket: null, // my waiting-room ticket, on a drop with `queue: true`
    };
    this.activity = new ActivityFeed();
    this.shopper = new Shopper(this);
    this.raffle = new RafflePanel(this);
    this.queue = new QueueSpot(this);
    this.statusChecks = 0;
    this.statusTimer = null;
    this.follower = new Follower(dropId, {
      onFrame: (frame) => this.onFrame(frame),
      onConn: (conn) => this.setConn(conn),
      onRetry: (attempt) => {
        if (attempt >= CHECK_AFTER_RETRIES) this.checkDrop();
      },
      onOpen: () => this.queue.hello(),
    });
  }

  render() {
    render(this.state);
    if (this.state.drop && !this.state.missing && !this.state.removed) this.raffle.render();
  }

  /** Say what went wrong, in words (a drop that has not opened yet is news, not an error). */
  fail(error) {
    if (error.code === "unauthorized") {
      message("error", messageFor("unauthorized"));
      return;
    }
    const ctx = { ...error, limit: this.state.drop ? this.state.drop.perUserLimit : undefined };
    message(error.code === "drop_not_live" ? "info" : "error", messageFor(error.code, ctx));
  }

  applyDrop(drop, seq) {
    const was = this.state.drop ? this.state.drop.status : null;
    if (was === "upcoming" && drop.status === "live") message(); // "not open yet" no longer holds
    const first = this.state.drop === null;
    this.state.drop = drop;
    this.state.seq = seq;
    if (!isDue(drop, serverNow())) this.statusChecks = 0;
    this.render();
    if (first) this.raffle.load();
    this.raffle.onDrop(drop);
  }

  /** The drop is not there: never was (`missing`), or was taken down while shown (`removed`). */
  gone(removed) {
    this.state.missing = !removed;
    this.state.removed = removed;
    this.follower.stop();
    this.render();
  }

  /** The drop from the API: a first paint, a check after failed reconnections, a fresh status. */
  async checkDrop() {
    try {
      const { data } = await api("GET", `/api/drops/${this.dropId}`);
      if (!this.state.drop || data.drop.version >= this.state.seq) this.applyDrop(data.drop, data.drop.version);
    } catch (e) {
      if (e.code === "not_found") this.gone(this.state.drop !== null);
    }
  }

  setConn(conn) {
    this.state.conn = conn;
    if (conn === "live") setNetbar();
    else if (conn === "offline") setNetbar("offline", "You’re offline. We’ll catch up as soon as you’re back.");
    if (this.state.drop) renderStock(this.state);
  }

  onFrame(frame) {
    const state = this.state;
    if (frame.type === "error") return;
    if (frame.type === "queue") {
      this.queue.onFrame(frame);
      return;
    }
    if (frame.type === "snapshot") {
      this.applyDrop(frame.drop, frame.seq);
      return;
    }
    if (typeof frame.seq === "number") {
      if (frame.seq <= state.seq) return; // already seen (a snapshot covered it)
      state.seq = frame.seq;
    }
    switch (frame.type) {
      case "stockUpdate":
        if (!state.drop) return;
        state.drop = withCounts(state.drop, frame.newStock, frame.reserved, frame.sold);
        break;
      case "reservationExpired":
        if (state.hold && state.hold.id === frame.reservationId) {
          this.shopper.holdEnded(messageFor("reservation_expired"));
        }
        this.activity.push("A hold ran out — a pair is back on sale");
        break;
      case "purchaseCompleted":
        this.activity.push(this.purchaseLine(frame.purchaser), `purchase-${frame.purchaseId}`);
        break;
      case "dropUpdated":
        this.applyDrop(frame.drop, state.seq);
        return;
      case "dropDeleted":
        this.gone(true);
        return;
      default:
        return;
    }
    this.render();
  }

  purchaseLine(purchaser) {
    const session = getSession();
    return session && purchaser === session.user.username ? "You bought a pair" : `${purchaser} just bought a pair`;
  }

  async loadRecentPurchases() {
    try {
      const { data } = await api("GET", `/api/purchases/drop/${this.dropId}`);
      const recent = data.purchases.slice().sort((a, b) => b.id - a.id).slice(0, 8);
      for (const p of recent) this.activity.push(`${p.purchaser} bought a pair`, `purchase-${p.id}`, toLocal(p.createdAt));
    } catch (e) {
      /* the feed fills in live; nothing to tell the shopper */
    }
  }

  /** Every TICK_MS: the countdowns, a hold running out, a status gone out of date. */
  tick() {
    const state = this.state;
    if (!state.drop || state.missing || state.removed) return;
    if (state.hold && Date.now() >= state.hold.deadline) {
      this.shopper.holdEnded(messageFor("reservation_expired"));
      return;
    }
    renderClock(state.drop);
    renderHold(state.hold);
    this.queue.tick();
    if (!this.statusTimer && isDue(state.drop, serverNow())) {
      this.statusChecks += 1;
      this.statusTimer = setTimeout(async () => {
        await this.checkDrop();
        this.statusTimer = null;
      }, backoff(this.statusChecks));
    }
  }

  showRetry() {
    const wait = this.follower.retryIn();
    if (this.state.conn === "reconnecting" && wait !== null) {
      setNetbar("reconnecting", `Live updates paused — reconnecting in ${Math.max(1, Math.ceil(wait / 1000))} s…`);
    }
  }

  start() {
    $("reserve-btn").addEventListener("click", () => this.shopper.reserve());
    $("queue-btn").addEventListener("click", () => this.queue.join());
    $("signin-btn").addEventListener("click", () => openSignIn("signin"));
    $("buy-btn").addEventListener("click", () => this.shopper.buy());
    $("cancel-btn").addEventListener("click", () => this.shopper.cancel());
    this.raffle.start();
    $("raffle-record").href = `/api/drops/${this.dropId}/raffle`;
    onSessionChange(() => {
      Object.assign(this.state, { hold: null, reserveKey: null, buyKey: null });
      message();
      this.shopper.load();
      this.raffle.load();
      this.queue.load();
      this.follower.send(this.queue.hello()); // the socket is told who watches now
    });
    setInterval(() => this.tick(), TICK_MS);
    setInterval(() => this.showRetry(), TICK_MS);
    if (!Number.isInteger(this.dropId)) {
      this.state.missing = true;
      this.render();
      return;
    }
    this.checkDrop().then(() => {
      if (this.state.missing) return;
      this.queue.load();
      this.follower.start();
      this.loadRecentPurchases();
    });
    this.shopper.load();
  }
}

/** Show the drop at this page's address, and keep it live. */
export function startDropView() {
  new DropPage(dropIdOf(location.pathname)).start();
}
