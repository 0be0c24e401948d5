/* What the shopper holds and owns in one drop, and the three things they can do about it:
 * reserve a pair, buy the held pair, or cancel the hold.
 *
 * Reserve and buy carry an Idempotency-Key that is kept when the network failed, so pressing
 * again after a dropped answer never holds or buys twice; any answer from the server (success
 * or refusal) retires the key. A hold's deadline is kept on the local clock, taken from the
 * server's `expiresAt`; a hold just made also ends no later than its length after the request
 * was sent, so a slow answer cannot make the page promise more time than the server gives.
 */

import { api, newKey } from "./api.js";
import { serverNow, toLocal } from "./clock.js";
import { message } from "./drop-render.js";
import { getSession } from "./session.js";
import { openSignIn } from "./signin-dialog.js";
import { messageFor } from "./words.js";

const GONE_HOLD = ["reservation_expired", "reservation_not_active", "not_found"];

/**
 * The shopper's side of the page `page` (`{state, dropId, render, fail}`, from drop-view.js):
 * state.hold (`{id, deadline (local ms), total}`), otherHolds, bought and lastPurchase.
 */
export class Shopper {
  constructor(page) {
    this.page = page;
  }

  /** The hold is over (it ran out, or was found gone): say so and offer the reserve button again. */
  holdEnded(text) {
    const state = this.page.state;
    state.hold = null;
    state.buyKey = null;
    message("error", text);
    this.page.render();
  }

  /** What this shopper holds and has bought in this drop, from the API. */
  async load() {
    const { state, dropId } = this.page;
    if (!getSession()) {
      Object.assign(state, { hold: null, otherHolds: 0, bought: 0, lastPurchase: null });
      this.page.render();
      return;
    }
    try {
      const [holds, bought] = await Promise.all([
        api("GET", "/api/reservations/user", { auth: true }),
        api("GET", "/api/purchases/user", { auth: true }),
      ]);
      const now = serverNow();
      const active = holds.data.reservations.filter(
        (r) => r.dropId === dropId && r.status === "active" && Date.parse(r.expiresAt) > now,
      );
      const newest = active[0] || null; // newest first
      if (!state.hold || !active.some((r) => r.id === state.hold.id)) {
        state.hold = newest
          ? {
              id: newest.id,
              deadline: toLocal(newest.expiresAt),
              total: Date.parse(newest.expiresAt) - Date.parse(newest.createdAt),
            }
          : null;
      }
      state.otherHolds = Math.max(0, active.length - (state.hold ? 1 : 0));
      const mine = bought.data.purchases.filter((p) => p.dropId === dropId);
      state.bought = mine.length;
      state.lastPurchase = mine.reduce((a, b) => (a && a.id > b.id ? a : b), null);
    } catch (e) {
      this.page.fail(e);
    }
    this.page.render();
  }

  /** Begin an action: nothing if one is running; returns whether this one may go. */
  begin() {
    const state = this.page.state;
    if (state.busy) return false;
    state.busy = true;
    message();
    this.page.render();
    return true;
  }

  end() {
    this.page.state.busy = false;
    this.page.render();
  }

  async reserve() {
    const { state, dropId } = this.page;
    if (!getSession()) {
      openSignIn("signin");
      return;
    }
    if (!this.begin()) return;
    state.reserveKey = state.reserveKey || newKey();
    const sent = Date.now();
    try {
      const admission = this.page.queue.token();
      const headers = admission ? { "Admission-Token": admission } : undefined;
      const { data } = await api("POST", "/api/reservations", { body: { dropId }, auth: true, key: state.reserveKey, headers });
      state.reserveKey = null;
      const r = data.reservation;
      const total = Date.parse(r.expiresAt) - Date.parse(r.createdAt);
      state.hold = { id: r.id, deadline: Math.min(sent + total, toLocal(r.expiresAt)), total };
      state.buyKey = null;
      if (state.hold.deadline <= Date.now()) this.holdEnded(messageFor("reservation_expired"));
    } catch (e) {
      if (e.code !== "network") state.reserveKey = null;
      this.page.fail(e);
      if (e.code === "limit_reached") this.load();
      if (e.code === "not_admitted") this.page.queue.load();
    } finally {
      this.end();
    }
  }

  async buy() {
    const state = this.page.state;
    if (!state.hold || state.busy) return;
    const button = document.getElementById("buy-btn");
    button.setAttribute("aria-busy", "true");
    button.textContent = "Buying…";
    this.begin();
    state.buyKey = state.buyKey || newKey();
    try {
      const { data } = await api("POST", "/api/purchases", {
        body: { reservationId: state.hold.id },
        auth: true,
        key: state.buyKey,
      });
      Object.assign(state, { hold: null, buyKey: null, bought: state.bought + 1, lastPurchase: data.purchase });
      message("success", `It’s yours! Order #${data.purchase.id} is confirmed.`);
    } catch (e) {
      if (e.code !== "network") state.buyKey = null;
      if (GONE_HOLD.includes(e.code)) {
        state.hold = null;
        this.load();
      }
      this.page.fail(e);
    } finally {
      button.removeAttribute("aria-busy");
      this.end();
    }
  }

  async cancel() {
    const state = this.page.state;
    if (!state.hold || !this.begin()) return;
    try {
      await api("DELETE", `/api/reservations/${state.hold.id}`, { auth: true });
      state.hold = null;
      state.buyKey = null;
      message("info", "Hold cancelled — the pair is back on sale for everyone.");
    } catch (e) {
      if (e.code === "reservation_not_active" || e.code === "not_found") {
        state.hold = null;
        this.load();
      }
      this.page.fail(e);
    } finally {
      this.end();
    }
  }
}
