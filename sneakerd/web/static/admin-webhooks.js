/* The webhooks panel: lists `/api/admin/webhooks` and the latest deliveries' state (pending,
 * delivered, dead: `/api/admin/webhooks/deliveries`), and says "not available" when the server
 * answers 404. Kept to one module so the panel can grow (add, remove, replay) on its own. */

import { api } from "./api.js";
import { $, el } from "./dom.js";

function item(hook) {
  const li = el("li");
  const events = Array.isArray(hook.events) && hook.events.length ? hook.events.join(", ") : "every event";
  li.append(el("strong", "", `#${hook.id}`), el("code", "", String(hook.url)), el("span", "", events));
  return li;
}

/** " Latest 100 deliveries: 97 delivered, 3 pending." (or "" when there are none). */
async function deliveryStates() {
  const { data } = await api("GET", "/api/admin/webhooks/deliveries?limit=100", { auth: true });
  const deliveries = (data && data.deliveries) || [];
  if (!deliveries.length) return " No deliveries yet.";
  const counts = new Map();
  for (const d of deliveries) counts.set(d.state, (counts.get(d.state) || 0) + 1);
  const parts = [...counts].map(([state, n]) => `${n} ${state}`);
  return ` Latest ${deliveries.length} deliveries: ${parts.join(", ")}.`;
}

export async function loadWebhooks() {
  const note = $("webhooks-note");
  const list = $("webhooks-list");
  try {
    const { data } = await api("GET", "/api/admin/webhooks?limit=200", { auth: true });
    const hooks = (data && data.webhooks) || [];
    list.replaceChildren(...hooks.map(item));
    list.hidden = hooks.length === 0;
    note.textContent = hooks.length
      ? `${hooks.length} webhook${hooks.length === 1 ? "" : "s"}.${await deliveryStates()}`
      : "No webhooks yet.";
  } catch (problem) {
    list.hidden = true;
    note.textContent =
      problem.status === 404 ? "Webhooks are not available on this server." : "Webhooks could not be loaded.";
  }
}
