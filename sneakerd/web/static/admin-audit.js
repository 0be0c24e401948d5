/* The audit log: who changed which drop, how, and what changed (newest first). */

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { dateTime } from "./format.js";

/** "paused: false → true, stock: 4 → 9": the fields an entry's write changed. */
export function changes(entry) {
  if (!entry.before) return "created";
  if (!entry.after) return "deleted";
  return Object.keys(entry.after)
    .filter((key) => JSON.stringify(entry.before[key]) !== JSON.stringify(entry.after[key]))
    .map((key) => `${key}: ${entry.before[key]} → ${entry.after[key]}`)
    .join(", ");
}

function row(entry) {
  const tr = el("tr");
  tr.dataset.action = entry.action;
  tr.append(
    el("td", "", dateTime.format(Date.parse(entry.at))),
    el("td", "", entry.actor),
    el("td", "audit-action", entry.action),
    el("td", "num", entry.dropId === null ? "—" : `#${entry.dropId}`),
    el("td", "changes", changes(entry)),
  );
  return tr;
}

/** Load the newest entries; rejects with the API's Problem. */
export async function loadAudit() {
  const { data } = await api("GET", "/api/admin/audit?limit=50", { auth: true });
  $("audit-body").replaceChildren(...data.entries.map(row));
  $("audit-empty").hidden = data.entries.length > 0;
}
