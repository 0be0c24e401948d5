/* Drawing `/drops/{id}` from the page's state: the product, the stock, the clock, the buttons.
 *
 * Nothing here changes the state or talks to the server; drop-view.js decides, this module
 * only shows. The status shown is the one the server sent (drop-status.js); the clock counts
 * down to its next change.
 */

import { serverNow } from "./clock.js";
import { $, el, setImage, showMessage } from "./dom.js";
import { STATUS_LABEL, shownStatus } from "./drop-status.js";
import { clockTime, dateTime, money, pad, pairs, parts, shortCountdown } from "./format.js";
import { queueAllowsReserve, renderQueue } from "./queue.js";
import { getSession } from "./session.js";
import { messageFor } from "./words.js";

const HOLD_URGENT_MS = 15000;
const CONN_LABEL = { live: "Live updates", connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "Offline" };
const GONE_HIDES = ["stock-panel", "clock", "about", "activity-panel", "queue", "reserve-btn", "signin-btn", "hold", "owned", "raffle"];

let shownStock = null;

/** The drop page's message box; no text hides it. */
export const message = (kind, text) => showMessage($("message"), kind, text);

/** Everything, from `state` (see drop-view.js). */
export function render(state) {
  if (state.missing || state.removed) {
    renderGone(state);
    return;
  }
  const drop = state.drop;
  if (!drop) return;
  const product = $("product");
  product.dataset.status = drop.status;
  product.setAttribute("aria-busy", "false");
  document.title = `${drop.name} · sneakerd`;

  const badge = $("status-badge");
  badge.dataset.status = shownStatus(drop);
  badge.textContent = STATUS_LABEL[shownStatus(drop)];
  setImage($("drop-image"), drop.imageUrl);
  $("drop-image").alt = drop.name;
  $("drop-brand").textContent = drop.brand || "Limited drop";
  $("drop-name").textContent = drop.name;
  $("drop-price").textContent = money(drop.price);
  $("about").hidden = !drop.description;
  $("drop-description").textContent = drop.description || "";

  renderStock(state);
  renderClock(drop);
  renderActions(state);
}

function renderGone(state) {
  const product = $("product");
  product.dataset.status = "ended";
  product.setAttribute("aria-busy", "false");
  $("status-badge").dataset.status = "ended";
  $("status-badge").textContent = state.removed ? "Removed" : "Not found";
  $("drop-name").textContent = state.removed ? "This drop was removed" : "Drop not found";
  $("drop-brand").textContent = "";
  $("drop-price").textContent = "";
  for (const id of GONE_HIDES) $(id).hidden = true;
  $("browse-btn").hidden = false;
  $("limit-note").textContent = "";
  message(
    "info",
    state.removed ? "This drop was taken down by the store. Have a look at the other drops." : messageFor("not_found_drop"),
  );
}

function stockDetail(drop) {
  if (drop.status === "sold_out") {
    return drop.reserved > 0
      ? `Sold out for now: ${drop.reserved} ${pairs(drop.reserved)} on hold. If a hold runs out, that pair comes back here.`
      : `Sold out — all ${drop.sold} ${pairs(drop.sold)} found a home.`;
  }
  if (drop.status === "ended") return `This drop has ended. ${drop.sold} ${pairs(drop.sold)} sold.`;
  return `${drop.sold} sold · ${drop.reserved} on hold right now`;
}

/** The stock panel, and how fresh it is (the WebSocket's state). */
export function renderStock(state) {
  const drop = state.drop;
  const stock = $("stock-count");
  const section = stock.closest(".stock");
  section.dataset.status = drop.status;
  section.dataset.conn = state.conn === "live" ? "fresh" : "stale";
  if (shownStock !== null && shownStock !== drop.stock) {
    stock.classList.remove("bump");
    void stock.offsetWidth; // restart the animation
    stock.classList.add("bump");
  }
  shownStock = drop.stock;
  stock.textContent = String(drop.stock);
  $("stock-label").textContent = `${pairs(drop.stock)} left of ${drop.initialStock}`;
  const total = Math.max(1, drop.initialStock);
  $("meter-sold").style.width = `${(100 * drop.sold) / total}%`;
  $("meter-held").style.width = `${(100 * drop.reserved) / total}%`;
  $("stock-detail").textContent = stockDetail(drop);
  const live = $("live-state");
  live.hidden = false;
  live.dataset.state = state.conn;
  live.textContent = CONN_LABEL[state.conn];
}

function segments(ms) {
  const p = parts(ms);
  const list = [];
  if (p.days > 0) list.push([p.days, p.days === 1 ? "day" : "days"]);
  list.push([pad(p.hours), "hrs"], [pad(p.minutes), "min"], [pad(p.seconds), "sec"]);
  return list.map(([value, unit]) => {
    const seg = el("span", "seg");
    seg.append(el("b", "", String(value)), el("small", "", unit));
    return seg;
  });
}

function clockFace(drop, now) {
  const starts = Date.parse(drop.startsAt);
  const ends = drop.endsAt ? Date.parse(drop.endsAt) : null;
  const soldOut = drop.status === "sold_out";
  if (drop.status === "upcoming") {
    return { label: "Drops in", value: segments(starts - now), note: `Opens ${dateTime.format(starts)}` };
  }
  if (drop.status === "ended") {
    return { label: "This drop has ended", value: [], note: ends ? `Closed ${dateTime.format(ends)}` : "" };
  }
  if (ends) {
    const label = soldOut ? "Sale window closes in" : "Ends in";
    return { label, value: segments(ends - now), note: `Went live ${dateTime.format(starts)}` };
  }
  return soldOut
    ? { label: "On sale since", value: [], note: dateTime.format(starts) }
    : { label: "Live now", value: [], note: `Went live ${dateTime.format(starts)} · no closing time` };
}

/** The clock panel: a countdown to the drop's next change, or when it opened or closed. */
export function renderClock(drop) {
  const face = clockFace(drop, serverNow());
  $("clock").hidden = false;
  $("clock-label").textContent = face.label;
  $("clock-value").replaceChildren(...face.value);
  $("clock-note").textContent = face.note;
}

/** The hold's countdown and bar (urgent in its last HOLD_URGENT_MS). */
export function renderHold(hold) {
  if (!hold) return;
  const left = hold.deadline - Date.now();
  $("hold-countdown").textContent = shortCountdown(left);
  $("hold-bar").style.width = `${Math.max(0, Math.min(100, (100 * left) / hold.total))}%`;
  $("hold").dataset.urgent = String(left <= HOLD_URGENT_MS);
}

function renderOwned(state) {
  const owned = $("owned");
  owned.hidden = !(getSession() && state.bought > 0 && !state.hold);
  if (owned.hidden) return;
  $("owned-text").textContent =
    state.bought === 1 ? "It’s yours. You bought a pair from this drop." : `It’s yours. You bought ${state.bought} pairs from this drop.`;
  $("owned-note").textContent = state.lastPurchase
    ? `Order #${state.lastPurchase.id} · ${money(state.lastPurchase.price)}`
    : "Thanks for shopping the drop.";
}

/** The reserve button's words, and whether it can be pressed now. */
function reserveFace(state, atLimit) {
  const drop = state.drop;
  if (drop.status === "upcoming") return { label: `Opens at ${clockTime.format(Date.parse(drop.startsAt))}`, disabled: true };
  if (drop.status === "sold_out") return { label: "Sold out", disabled: true };
  if (drop.status === "ended") return { label: "Drop ended", disabled: true };
  if (drop.paused) return { label: "Paused", disabled: true };
  if (atLimit) return { label: "Limit reached", disabled: true };
  return { label: state.bought > 0 ? "Reserve another pair" : "Reserve a pair", disabled: state.busy };
}

function renderReserve(state) {
  const drop = state.drop;
  const reserve = $("reserve-btn");
  const atLimit = state.bought + state.otherHolds + (state.hold ? 1 : 0) >= drop.perUserLimit;
  reserve.hidden =
    !getSession() ||
    Boolean(state.hold) ||
    (atLimit && state.bought > 0) ||
    drop.mode === "raffle" ||
    !queueAllowsReserve(state);
  const face = reserveFace(state, atLimit);
  reserve.textContent = state.busy && !state.hold ? "Reserving…" : face.label;
  reserve.disabled = face.disabled;
  if (state.busy) reserve.setAttribute("aria-busy", "true");
  else reserve.removeAttribute("aria-busy");
}

function renderActions(state) {
  const drop = state.drop;
  const session = getSession();
  const signIn = $("signin-btn");
  signIn.hidden = Boolean(session) || drop.mode === "raffle"; // a raffle has its own (raffle-panel.js)
  signIn.textContent = drop.status === "upcoming" ? "Sign in to be ready" : "Sign in to reserve";
  signIn.disabled = drop.status === "ended";

  $("hold").hidden = !(session && state.hold);
  if (session && state.hold) {
    $("buy-btn").textContent = drop.paused ? "Paused" : `Buy now · ${money(drop.price)}`;
    $("buy-btn").disabled = state.busy || Boolean(drop.paused);
    $("cancel-btn").disabled = state.busy;
    renderHold(state.hold);
  }
  renderOwned(state);
  renderQueue(state);
  renderReserve(state);
  $("limit-note").textContent =
    drop.perUserLimit === 1 ? "Limit one pair per customer." : `Limit ${drop.perUserLimit} pairs per customer.`;
}
