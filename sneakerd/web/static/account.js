/* The header's account box: who is signed in and a way out, or the ways in. */

import { $, el } from "./dom.js";
import { getSession, setSession } from "./session.js";
import { openSignIn } from "./signin-dialog.js";

function button(className, text, id, onClick) {
  const node = el("button", className, text);
  node.type = "button";
  node.id = id;
  node.addEventListener("click", onClick);
  return node;
}

/** Draw the box for the current session (again after every sign-in and sign-out). */
export function renderAccount() {
  const box = $("account");
  if (!box) return;
  box.replaceChildren();
  const session = getSession();
  if (session) {
    const who = el("span", "account__who");
    who.append(el("span", "", "Signed in as "), el("strong", "", session.user.username));
    who.id = "account-name";
    box.append(who, button("btn btn--ghost btn--small", "Sign out", "signout-btn", () => setSession(null)));
  } else {
    box.append(
      button("btn btn--ghost btn--small", "Sign in", "header-signin", () => openSignIn("signin")),
      button("btn btn--primary btn--small account__join", "Create account", "header-register", () =>
        openSignIn("register"),
      ),
    );
  }
}
