/* The webhooks panel: lists `/api/admin/webhooks` when the server has that endpoint, and says
 * "not available" when it answers 404 (a server without webhooks). Kept to one module so the
 * panel can grow (add, remove) on its own. */

import { api } from "./api.js";
import { $, el } from "./dom.js";

function item(hook) {
  const li = el("li");
  const events = Array.isArray(hook.events) && hook.events.length ? hook.events.join(", ") : "every event";
  li.append(el("strong", "", `#${hook.id}`), el("code", "", String(hook.url)), el("span", "", events));
  return li;
}

export async function loadWebhooks() {
  const note = $("webhooks-note");
  const list = $("webhooks-list");
  try {
    const { data } = await api("GET", "/api/admin/webhooks", { auth: true });
    const hooks = (data && data.webhooks) || [];
    list.replaceChildren(...hooks.map(item));
    list.hidden = hooks.length === 0;
    note.textContent = hooks.length ? `${hooks.length} webhook${hooks.length === 1 ? "" : "s"}.` : "No webhooks yet.";
  } catch (problem) {
    list.hidden = true;
    note.textContent =
      problem.status === 404 ? "Webhooks are not available on this server." : "Webhooks could not be loaded.";
  }
}
