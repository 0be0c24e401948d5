/* Who bought a drop, with emails (admins only), a page at a time, and the whole list as CSV.
 *
 * The CSV comes from the same endpoint with `Accept: text/csv`; it needs the admin's token, so
 * it is fetched here and handed to the browser as a file (a plain link could not carry it).
 */

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { dateTime, money } from "./format.js";
import { getSession } from "./session.js";

let current = null;
let cursor = null;
let onProblem = () => {};

function row(purchase) {
  const tr = el("tr");
  tr.append(
    el("td", "num", `#${purchase.id}`),
    el("td", "", purchase.user.username),
    el("td", "", purchase.user.email),
    el("td", "num", money(purchase.price)),
    el("td", "", dateTime.format(Date.parse(purchase.createdAt))),
  );
  return tr;
}

async function page(first) {
  const query = cursor && !first ? `&cursor=${encodeURIComponent(cursor)}` : "";
  const drop = current;
  const { data } = await api("GET", `/api/admin/drops/${drop.id}/purchases?limit=50${query}`, { auth: true });
  if (drop !== current) return;
  if (first) $("buyers-body").replaceChildren();
  $("buyers-body").append(...data.purchases.map(row));
  cursor = data.nextCursor;
  $("buyers-more").hidden = !cursor;
  const count = $("buyers-body").children.length;
  $("buyers-table").hidden = count === 0;
  $("buyers-note").textContent = count
    ? `${drop.name}: ${count}${cursor ? "+" : ""} purchase${count === 1 ? "" : "s"}.`
    : `${drop.name}: no purchases yet.`;
}

async function downloadCsv() {
  const drop = current;
  const session = getSession();
  if (!drop || !session) return;
  const button = $("csv-btn");
  button.disabled = true;
  try {
    const response = await fetch(`/api/admin/drops/${drop.id}/purchases`, {
      headers: { Accept: "text/csv", Authorization: `Bearer ${session.token}` },
      cache: "no-store",
      credentials: "omit",
    });
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      onProblem({ code: (data && data.error && data.error.code) || "bad_request", status: response.status });
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    const link = el("a");
    link.href = url;
    link.download = `drop-${drop.id}-purchases.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    onProblem({ code: "network", status: 0 });
  } finally {
    button.disabled = false;
  }
}

/** Show `drop`'s buyers (newest first) and let its CSV be downloaded. */
export function showBuyers(drop, report) {
  current = drop;
  cursor = null;
  onProblem = report;
  $("csv-btn").disabled = false;
  $("buyers-title").textContent = `Buyers · ${drop.name}`;
  page(true).catch(report);
}

$("buyers-more").addEventListener("click", () => page(false).catch(onProblem));
$("csv-btn").addEventListener("click", downloadCsv);
