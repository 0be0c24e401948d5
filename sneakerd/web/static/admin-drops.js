/* The drops table of the operators' page: live counts (polled), pause or unpause, restock.
 *
 * Each row is made once per drop and only its cells change afterwards, and a refresh moves a row
 * only when the order changes, so a number being typed into a restock box (its text and its
 * focus) survives every refresh. A restock asks for `initialStock` + N, which the
 * drop's actor accepts or refuses against its own committed counts.
 */

import { api } from "./api.js";
import { STATUS_LABEL, shownStatus } from "./drop-status.js";
import { $, el, showMessage } from "./dom.js";

const POLL_MS = 2000;

let timer = null;
let handlers = null;
const rows = new Map();
const drops = new Map();

function button(text, className, onClick) {
  const node = el("button", className || "btn btn--ghost btn--small", text);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

async function change(drop, body, done) {
  try {
    const { data } = await api("PUT", `/api/drops/${drop.id}`, { auth: true, body });
    put(data.drop);
    showMessage($("admin-message"), "success", done(data.drop));
    handlers.onChanged();
  } catch (problem) {
    handlers.report(problem);
  }
}

function makeRow(drop) {
  const row = el("tr");
  row.dataset.dropId = String(drop.id);
  const link = el("a", "", drop.name);
  link.href = `/drops/${drop.id}`;
  const cells = {
    id: el("td", "num"),
    name: el("td"),
    status: el("td"),
    stock: el("td", "num"),
    reserved: el("td", "num"),
    sold: el("td", "num"),
    initial: el("td", "num"),
    actions: el("td"),
  };
  cells.name.append(link);
  const badge = el("span", "badge");
  cells.status.append(badge);
  const actions = el("div", "admin-actions");
  const pause = button("Pause", "btn btn--ghost btn--small pause-btn", () => {
    const current = drops.get(drop.id);
    const paused = !current.paused;
    change(current, { paused }, (d) => `Drop #${d.id} ${paused ? "paused" : "unpaused"}.`);
  });
  const amount = el("input");
  amount.type = "number";
  amount.min = "1";
  amount.value = "10";
  amount.className = "restock-amount";
  amount.setAttribute("aria-label", `Units to add to drop ${drop.id}`);
  const restock = button("Restock", "btn btn--ghost btn--small restock-btn", () => {
    const add = parseInt(amount.value, 10);
    if (!(add > 0)) {
      showMessage($("admin-message"), "error", "Enter how many units to add (1 or more).");
      return;
    }
    const current = drops.get(drop.id);
    change(current, { initialStock: current.initialStock + add }, (d) => `Drop #${d.id} restocked: ${d.initialStock} units.`);
  });
  const buyers = button("Buyers", "btn btn--ghost btn--small buyers-btn", () => {
    for (const other of rows.values()) other.row.dataset.selected = "false";
    row.dataset.selected = "true";
    handlers.onBuyers(drops.get(drop.id));
  });
  actions.append(pause, amount, restock, buyers);
  cells.actions.append(actions);
  row.append(...Object.values(cells));
  return { row, cells, badge, link, pause };
}

function put(drop) {
  drops.set(drop.id, drop);
  let entry = rows.get(drop.id);
  if (!entry) {
    entry = makeRow(drop);
    rows.set(drop.id, entry);
  }
  const status = shownStatus(drop);
  entry.row.dataset.status = status;
  entry.cells.id.textContent = String(drop.id);
  entry.link.textContent = drop.name;
  entry.badge.dataset.status = status;
  entry.badge.textContent = STATUS_LABEL[status] || status;
  entry.cells.stock.textContent = String(drop.stock);
  entry.cells.reserved.textContent = String(drop.reserved);
  entry.cells.sold.textContent = String(drop.sold);
  entry.cells.initial.textContent = String(drop.initialStock);
  entry.pause.textContent = drop.paused ? "Unpause" : "Pause";
  entry.pause.disabled = drop.status === "ended";
}

/** Put `wanted` into `body` in that order, moving only rows out of place: a moved row loses the
 * focus of the box being typed into, so a refresh that changes nothing moves nothing. */
function order(body, wanted) {
  wanted.forEach((row, i) => {
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
  });
  while (body.children.length > wanted.length) body.lastElementChild.remove();
}

async function poll() {
  timer = null;
  try {
    const { data } = await api("GET", "/api/drops?limit=200");
    const seen = new Set(data.drops.map((d) => d.id));
    for (const id of [...rows.keys()]) {
      if (!seen.has(id)) {
        rows.get(id).row.remove();
        rows.delete(id);
        drops.delete(id);
      }
    }
    data.drops.forEach(put);
    order($("drops-body"), data.drops.map((d) => rows.get(d.id).row));
    $("drops-empty").hidden = data.drops.length > 0;
    $("drops-live").dataset.state = "live";
    $("drops-live").textContent = "Live";
  } catch (problem) {
    $("drops-live").dataset.state = "reconnecting";
    $("drops-live").textContent = "Reconnecting";
  }
  if (handlers) timer = setTimeout(poll, POLL_MS);
}

/** Show the drops and keep their counts current until `stopDrops`. */
export function startDrops(next) {
  const running = handlers !== null;
  handlers = next;
  if (!running) poll();
}

export function stopDrops() {
  handlers = null;
  clearTimeout(timer);
  timer = null;
}
