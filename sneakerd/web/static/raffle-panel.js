/* A raffle drop's part of `/drops/{id}`: enter the draw, see your entry, the draw's proofs
 * (the seed's commitment, the entries' digest, then the seed) and your result.
 *
 * A winner's prize is an ordinary hold: once the draw is published the page reloads the
 * shopper's holds (holds.js), and the hold panel's "Buy now" is the claim button. A raffle drop
 * has no reserve button; the server would refuse it (raffle_only) anyway.
 */

import { api } from "./api.js";
import { serverNow } from "./clock.js";
import { $ } from "./dom.js";
import { dateTime } from "./format.js";
import { getSession } from "./session.js";
import { openSignIn } from "./signin-dialog.js";

const PROOFS = [
  ["seedCommitment", "raffle-commitment", "Published when entries open"],
  ["entriesDigest", "raffle-digest", "Published when entries close"],
  ["seed", "raffle-seed", "Published with the draw"],
];

export class RafflePanel {
  /** `page`: the drop page (`{state, dropId, render, shopper, fail}`, from drop-view.js). */
  constructor(page) {
    this.page = page;
    this.entry = null; // {id, createdAt, result} once known
    this.drawnSeen = false;
  }

  isRaffle() {
    const drop = this.page.state.drop;
    return Boolean(drop && drop.mode === "raffle");
  }

  /** My entry, from the API (null: not entered). */
  async load() {
    this.entry = null;
    if (!getSession() || !this.isRaffle()) {
      this.render();
      return;
    }
    try {
      const { data } = await api("GET", `/api/drops/${this.page.dropId}/entries/me`, { auth: true });
      this.entry = data.entry;
    } catch (e) {
      this.page.fail(e);
    }
    this.render();
  }

  async enter() {
    if (!getSession()) {
      openSignIn("signin");
      return;
    }
    const button = $("enter-btn");
    button.disabled = true;
    button.textContent = "Entering…";
    try {
      const { data } = await api("POST", `/api/drops/${this.page.dropId}/entries`, { auth: true, body: {} });
      this.entry = { ...data.entry, result: null };
    } catch (e) {
      if (e.code === "already_entered") await this.load();
      else this.page.fail(e);
    }
    this.render();
  }

  /** Called with every new drop state: a draw just published means results and holds to fetch. */
  onDrop(drop) {
    const drawn = Boolean(drop.raffle && drop.raffle.seed);
    if (drawn && !this.drawnSeen) {
      this.drawnSeen = true;
      if (getSession()) {
        this.load();
        this.page.shopper.load();
      }
    }
  }

  render() {
    const panel = $("raffle");
    const drop = this.page.state.drop;
    panel.hidden = !this.isRaffle();
    if (panel.hidden) return;
    const raffle = drop.raffle || {};
    const now = serverNow();
    const opens = Date.parse(drop.entriesOpenAt);
    const closes = Date.parse(drop.entriesCloseAt);
    const open = now >= opens && now < closes && !raffle.entriesDigest;
    $("raffle-window").textContent =
      now < opens
        ? `Entries open ${dateTime.format(opens)} and close ${dateTime.format(closes)}.`
        : open
          ? `Entries close ${dateTime.format(closes)}. ${raffle.entryCount} entered so far.`
          : `Entries closed ${dateTime.format(closes)}. ${raffle.entryCount} entered.`;
    for (const [key, id, pending] of PROOFS) {
      const node = $(id);
      node.textContent = raffle[key] || pending;
      node.dataset.published = String(Boolean(raffle[key]));
    }
    const signedIn = Boolean(getSession());
    const enter = $("enter-btn");
    enter.hidden = Boolean(this.entry) || !open;
    enter.disabled = false;
    enter.textContent = signedIn ? "Enter the draw" : "Sign in to enter the draw";
    $("raffle-entry").hidden = !this.entry;
    if (this.entry) $("raffle-entry-id").textContent = `#${this.entry.id}`;
    const result = $("raffle-result");
    const outcome = this.entry ? this.entry.result : null;
    result.hidden = !outcome;
    result.dataset.result = outcome || "";
    result.textContent =
      outcome === "won"
        ? "You won! A pair is held for you: buy it before the timer ends."
        : outcome === "lost"
          ? "Not this time: your entry was not drawn. If a winner doesn’t claim, the pair passes to the next entry."
          : "";
  }

  start() {
    $("enter-btn").addEventListener("click", () => this.enter());
  }
}
