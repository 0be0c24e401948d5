/* The shopper's session: `{token, user}` from sign-in, kept in localStorage.
 *
 * The token is the whole of it: the page never sees a password again after sign-in. A saved
 * token past its `exp` is dropped on read, so a returning shopper is asked to sign in rather
 * than shown errors. Every tab follows a sign-in or sign-out made in another (the storage event).
 */

const SESSION_KEY = "sneakerd.session";

let session = readSession();
const listeners = [];

function jwtExpiry(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part));
    return typeof claims.exp === "number" ? claims.exp * 1000 : null;
  } catch (e) {
    return null;
  }
}

function readSession() {
  try {
    const saved = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
    if (!saved || typeof saved.token !== "string" || !saved.user) return null;
    const exp = jwtExpiry(saved.token);
    if (exp !== null && exp <= Date.now()) {
      localStorage.removeItem(SESSION_KEY);
      return null;
    }
    return saved;
  } catch (e) {
    return null;
  }
}

function changed() {
  listeners.forEach((listener) => listener());
}

/** The signed-in shopper's `{token, user}`, or null. */
export const getSession = () => session;

/** Sign in (a `{token, user}`) or out (null), in this tab and, through storage, in the others. */
export function setSession(next) {
  session = next;
  try {
    if (next) localStorage.setItem(SESSION_KEY, JSON.stringify(next));
    else localStorage.removeItem(SESSION_KEY);
  } catch (e) {
    /* private mode: the session lasts for this page only */
  }
  changed();
}

/** Call `listener` after every sign-in and sign-out, in the order listeners were added. */
export function onSessionChange(listener) {
  listeners.push(listener);
}

window.addEventListener("storage", (event) => {
  if (event.key === SESSION_KEY) {
    session = readSession();
    changed();
  }
});
