/* `/`: every drop, as cards, what can be bought now first.
 *
 * Each card shows the status the server sent and counts down to an upcoming drop's start;
 * when a countdown reaches zero (or a drop's sale window closes) the list is fetched again, a
 * little later with each answer that has not caught up yet. The whole list is fetched again
 * every LIST_REFRESH_MS while the page is visible.
 */

import { api } from "./api.js";
import { serverNow } from "./clock.js";
import { $, el, setImage, showMessage } from "./dom.js";
import { STATUS_LABEL, STATUS_ORDER, isDue, shownStatus } from "./drop-status.js";
import { backoff } from "./follower.js";
import { money, shortCountdown } from "./format.js";
import { messageFor } from "./words.js";

const LIST_REFRESH_MS = 20000;
const PAGE_SIZE = 200; // the most GET /api/drops answers at once
const MAX_LIST_PAGES = 25; // 5,000 drops: a huge catalogue cannot keep the page fetching forever

let drops = [];
let staleChecks = 0;
let staleTimer = null;

function stockLine(drop, now) {
  if (drop.status === "upcoming") return `Drops in ${shortCountdown(Date.parse(drop.startsAt) - now)}`;
  if (drop.status === "sold_out") return drop.reserved > 0 ? `Sold out · ${drop.reserved} on hold` : "Sold out";
  if (drop.status === "ended") return "Ended";
  return `${drop.stock} of ${drop.initialStock} left`;
}

function card(drop) {
  const item = el("li", "card");
  item.dataset.dropId = String(drop.id);
  const link = el("a", "card__link");
  link.href = `/drops/${drop.id}`;
  const media = el("div", "card__media");
  const img = el("img");
  img.alt = drop.name;
  img.loading = "lazy";
  img.width = 640;
  img.height = 400;
  setImage(img, drop.imageUrl);
  media.append(el("span", "badge"), img);
  const body = el("div", "card__body");
  const row = el("div", "card__row");
  row.append(el("span", "card__price", money(drop.price)), el("span", "card__stock"));
  body.append(el("span", "card__brand", drop.brand || "Limited drop"), el("span", "card__name", drop.name), row);
  link.append(media, body);
  item.append(link);
  return item;
}

function tick() {
  const now = serverNow();
  for (const item of $("drops").children) {
    const drop = drops.find((d) => String(d.id) === item.dataset.dropId);
    if (!drop) continue;
    item.dataset.status = drop.status;
    const badge = item.querySelector(".badge");
    badge.dataset.status = shownStatus(drop);
    badge.textContent = STATUS_LABEL[shownStatus(drop)];
    item.querySelector(".card__stock").textContent = stockLine(drop, now);
  }
  if (!staleTimer && drops.some((drop) => isDue(drop, now))) {
    staleChecks += 1;
    staleTimer = setTimeout(load, backoff(staleChecks));
  }
}

/* Every drop, a page at a time: each answer names the next page's cursor (null on the last). */
async function allDrops() {
  const found = [];
  let cursor = null;
  for (let page = 0; page < MAX_LIST_PAGES; page += 1) {
    const query = cursor ? `limit=${PAGE_SIZE}&cursor=${encodeURIComponent(cursor)}` : `limit=${PAGE_SIZE}`;
    const { data } = await api("GET", `/api/drops?${query}`);
    found.push(...data.drops);
    cursor = data.nextCursor;
    if (!cursor) break;
  }
  return found;
}

const byListOrder = (a, b) =>
  STATUS_ORDER[a.status] - STATUS_ORDER[b.status] || Date.parse(a.startsAt) - Date.parse(b.startsAt) || a.id - b.id;

async function load() {
  try {
    drops = (await allDrops()).sort(byListOrder);
    if (!drops.some((drop) => isDue(drop, serverNow()))) staleChecks = 0;
    $("drops").replaceChildren(...drops.map(card));
    $("drops").setAttribute("aria-busy", "false");
    $("empty").hidden = drops.length > 0;
    showMessage($("message"));
  } catch (e) {
    showMessage($("message"), "error", messageFor(e.code, e));
  } finally {
    clearTimeout(staleTimer);
    staleTimer = null;
  }
  tick();
}

/** Show the list, and keep it current. */
export function startListView() {
  load();
  setInterval(tick, 1000);
  setInterval(() => {
    if (document.visibilityState === "visible") load();
  }, LIST_REFRESH_MS);
}
