/* The operators' page (/admin): drops with live counts, pause and restock, each drop's buyers
 * (with a CSV download), the audit log, and the webhooks if the server has them.
 *
 * One more client of the REST API, like the shop: the server decides every rule and refuses a
 * customer's token on every admin call, so the sign-in gate here only spares a customer a page
 * of errors. Each panel is its own module; this one signs in and starts or stops them.
 */

import { renderAccount } from "./account.js";
import { loadAudit } from "./admin-audit.js";
import { showBuyers } from "./admin-buyers.js";
import { startDrops, stopDrops } from "./admin-drops.js";
import { loadWebhooks } from "./admin-webhooks.js";
import { $, showMessage } from "./dom.js";
import { getSession, onSessionChange } from "./session.js";
import { openSignIn, setupSignIn } from "./signin-dialog.js";
import { messageFor } from "./words.js";

/** Tell the operator what went wrong; a 403 means this account is not an admin (any more). */
export function report(problem) {
  if (problem && problem.code === "forbidden") {
    gate("This account is not an admin account (any more). Sign in with an admin account.");
    return;
  }
  showMessage($("admin-message"), "error", messageFor(problem && problem.code, problem));
}

function gate(forbidden) {
  const session = getSession();
  const admin = Boolean(session && session.user.role === "admin" && !forbidden);
  const box = $("admin-gate");
  box.hidden = admin;
  $("admin-main").hidden = !admin;
  $("gate-signin").hidden = Boolean(session);
  if (!session) {
    box.dataset.kind = "signin";
    $("gate-text").textContent = "Sign in with an admin account to manage drops.";
  } else if (!admin) {
    box.dataset.kind = "forbidden";
    $("gate-text").textContent =
      forbidden ||
      `You are signed in as ${session.user.username}, a customer account. This page is for admins: sign out, then sign in with an admin account.`;
  }
  if (admin) {
    startDrops({ onBuyers: (drop) => showBuyers(drop, report), onChanged: refreshLog, report });
    refreshLog();
    loadWebhooks();
  } else {
    stopDrops();
    showMessage($("admin-message"));
  }
}

function refreshLog() {
  loadAudit().catch(report);
}

setupSignIn();
$("gate-signin").addEventListener("click", () => openSignIn("signin"));
onSessionChange(() => {
  renderAccount();
  gate();
});
renderAccount();
gate();
