/* The sign-in dialog, on every page: sign in, or create an account, through the REST API.
 *
 * Its markup lives here and only here; the dialog is added to the page the first time the
 * page sets it up. The markup is a constant (nothing a shopper or the server sends goes into
 * it), so it is parsed once from a template string; the CSP needs no inline script for it.
 * The browser's own checks run first, so an obviously short password never reaches the API.
 */

import { api } from "./api.js";
import { $, showMessage } from "./dom.js";
import { setSession } from "./session.js";
import { fieldHint, messageFor } from "./words.js";

const MARKUP = `
<dialog class="dialog" id="auth-dialog" aria-labelledby="auth-title">
  <form class="auth" id="auth-form" novalidate>
    <div class="auth__head">
      <h2 id="auth-title">Sign in</h2>
      <button type="button" class="icon-btn" id="auth-close" aria-label="Close">×</button>
    </div>
    <div class="tabs" role="tablist">
      <button type="button" role="tab" class="tab" id="tab-signin" aria-selected="true">Sign in</button>
      <button type="button" role="tab" class="tab" id="tab-register" aria-selected="false">Create account</button>
    </div>
    <label class="field" id="field-username" hidden>Username
      <input name="username" id="auth-username" autocomplete="username" minlength="3" maxlength="32"
             pattern="[A-Za-z0-9_.\\-]+" spellcheck="false" autocapitalize="none">
      <small>3–32 letters, digits, dots, dashes or underscores.</small>
    </label>
    <label class="field">Email
      <input name="email" id="auth-email" type="email" autocomplete="email" required maxlength="254">
    </label>
    <label class="field">Password
      <input name="password" id="auth-password" type="password" autocomplete="current-password"
             required minlength="8" maxlength="128">
      <small id="password-hint" hidden>At least 8 characters.</small>
    </label>
    <div class="message" id="auth-message" role="alert" hidden></div>
    <button type="submit" class="btn btn--primary btn--block" id="auth-submit">Sign in</button>
  </form>
</dialog>`;

let mode = "signin";

function setMode(next) {
  mode = next;
  const register = next === "register";
  $("auth-title").textContent = register ? "Create your account" : "Sign in";
  $("auth-submit").textContent = register ? "Create account" : "Sign in";
  $("tab-signin").setAttribute("aria-selected", String(!register));
  $("tab-register").setAttribute("aria-selected", String(register));
  $("field-username").hidden = !register;
  $("auth-username").required = register;
  $("password-hint").hidden = !register;
  $("auth-password").autocomplete = register ? "new-password" : "current-password";
  showMessage($("auth-message"));
}

/** The first visible field the browser finds invalid, in words (and focused), or null. */
function localCheck(form) {
  for (const input of form.querySelectorAll("input")) {
    if (input.closest("[hidden]")) continue;
    if (!input.checkValidity()) {
      input.focus();
      return fieldHint(input.name);
    }
  }
  return null;
}

function send(email, password) {
  if (mode === "register") {
    const username = $("auth-username").value.trim();
    return api("POST", "/api/users/register", { body: { username, email, password } });
  }
  return api("POST", "/api/users/login", { body: { email, password } });
}

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const problem = localCheck(form);
  if (problem) {
    showMessage($("auth-message"), "error", problem);
    return;
  }
  const button = $("auth-submit");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  showMessage($("auth-message"));
  try {
    const { data } = await send($("auth-email").value.trim(), $("auth-password").value);
    setSession({ token: data.token, user: data.user });
    form.reset();
    $("auth-dialog").close();
  } catch (e) {
    showMessage($("auth-message"), "error", messageFor(e.code, e));
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** Add the dialog to the page and wire it up; call once, before `openSignIn`. */
export function setupSignIn() {
  const template = document.createElement("template");
  template.innerHTML = MARKUP.trim();
  document.body.append(template.content);
  const dialog = $("auth-dialog");
  $("tab-signin").addEventListener("click", () => setMode("signin"));
  $("tab-register").addEventListener("click", () => setMode("register"));
  $("auth-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });
  $("auth-form").addEventListener("submit", submit);
}

/** Open the dialog on its "signin" or "register" tab. */
export function openSignIn(next) {
  const dialog = $("auth-dialog");
  if (!dialog) return;
  setMode(next);
  if (!dialog.open) dialog.showModal();
  (next === "register" ? $("auth-username") : $("auth-email")).focus();
}
