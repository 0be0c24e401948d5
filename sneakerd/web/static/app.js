/* sneakerd shop window: the drop list (/) and one drop selling out live (/drops/{id}).
 *
 * No framework and no build step. The page is one more client of the REST API and the drop's
 * WebSocket (see docs/API.md): it signs in and registers through the API, keeps the token in
 * localStorage, and follows the drop over its WebSocket, reconnecting with backoff and taking
 * every `snapshot` as the whole truth. Shoppers never see an error code, only a sentence.
 */
(function () {
  "use strict";

  const SESSION_KEY = "sneakerd.session";
  const PLACEHOLDER = "/static/sneaker.svg";
  const HOLD_URGENT_MS = 15000;
  const PING_EVERY_MS = 25000;
  const PONG_WITHIN_MS = 10000;
  const MAX_BACKOFF_MS = 15000;
  const LIST_REFRESH_MS = 20000;
  const MAX_LIST_PAGES = 25; // 5,000 drops at 200 a page

  const $ = (id) => document.getElementById(id);

  /* ---------- words a shopper understands ---------- */

  const MESSAGES = {
    out_of_stock:
      "Sold out — every pair is sold or on hold right now. Holds that run out come back here, so keep this page open.",
    limit_reached: (ctx) =>
      `You already have ${ctx.limit === 1 ? "your pair" : `${ctx.limit || "the most"} pairs`} from this drop — that’s the limit per customer.`,
    drop_not_live: "This drop hasn’t started yet. Reserving opens when the countdown reaches zero.",
    drop_ended: "This drop has ended, so it can’t be reserved or bought any more.",
    reservation_expired:
      "Your hold ran out before checkout, so the pair went back on sale. You can try to reserve it again.",
    reservation_not_active: "That hold is no longer active — it was cancelled or already checked out.",
    rate_limited: (ctx) =>
      `You’re going a little fast. Please wait ${ctx.retryAfter || "a few"} second${ctx.retryAfter === 1 ? "" : "s"} and try again.`,
    unavailable: "The store is very busy right now and nothing was done. Please try again in a few seconds.",
    internal_error: "Something went wrong on our side and nothing was charged. Please try again.",
    network: "We can’t reach the store. Check your internet connection and try again.",
    invalid_credentials: "That email and password don’t match an account. Please check them and try again.",
    email_taken: "There’s already an account with that email. Sign in instead.",
    username_taken: "That username is taken. Please pick another one.",
    unauthorized: "Your session has ended. Please sign in again.",
    forbidden: "Your account can’t do that.",
    not_found: "We couldn’t find that. It may have been removed.",
    not_found_drop: "We couldn’t find this drop. It may have been removed, or the link is mistyped.",
    payload_too_large: "That was too much to send at once. Please shorten it and try again.",
    validation_error: (ctx) => fieldMessages(ctx.details),
    bad_request: "Something went wrong with that request. Please reload the page and try again.",
  };

  const FIELD_HINTS = {
    username: "Usernames are 3 to 32 letters, digits, dots, dashes or underscores.",
    email: "Please enter a valid email address.",
    password: "Passwords need 8 to 128 characters.",
  };

  function fieldMessages(details) {
    const fields = Object.keys(details || {});
    const hints = fields.map((f) => FIELD_HINTS[f]).filter(Boolean);
    return hints.length ? hints.join(" ") : "Some details don’t look right. Please check them and try again.";
  }

  /** The sentence for an API error code (or a problem from this script). */
  function messageFor(code, ctx) {
    const entry = MESSAGES[code] || MESSAGES.bad_request;
    return typeof entry === "function" ? entry(ctx || {}) : entry;
  }

  class Problem extends Error {
    constructor(code, status, details, retryAfter) {
      super(code);
      this.code = code;
      this.status = status;
      this.details = details || null;
      this.retryAfter = retryAfter;
    }
  }

  /* ---------- clock: the server's time, from the Date header ---------- */

  let skewMs = 0; // server time minus local time, to about half a second
  function noteServerTime(response) {
    const date = Date.parse(response.headers.get("Date") || "");
    if (!Number.isNaN(date)) skewMs = date + 500 - Date.now();
  }
  const serverNow = () => Date.now() + skewMs;

  /* ---------- the session (token in localStorage) ---------- */

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

  let session = readSession();
  const sessionListeners = [];

  function setSession(next) {
    session = next;
    try {
      if (next) localStorage.setItem(SESSION_KEY, JSON.stringify(next));
      else localStorage.removeItem(SESSION_KEY);
    } catch (e) {
      /* private mode: the session lasts for this page only */
    }
    sessionListeners.forEach((listener) => listener());
  }

  window.addEventListener("storage", (event) => {
    if (event.key === SESSION_KEY) {
      session = readSession();
      sessionListeners.forEach((listener) => listener());
    }
  });

  /* ---------- the REST API ---------- */

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function api(method, path, options) {
    const opts = options || {};
    const headers = { Accept: "application/json" };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    if (opts.auth) {
      if (!session) throw new Problem("unauthorized", 401);
      headers.Authorization = `Bearer ${session.token}`;
    }
    if (opts.key) headers["Idempotency-Key"] = opts.key;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (e) {
      throw new Problem("network", 0);
    }
    noteServerTime(response);
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch (e) {
        data = null;
      }
    }
    if (response.ok) return { status: response.status, data };
    const error = (data && data.error) || {};
    const code = error.code || (response.status >= 500 ? "unavailable" : "bad_request");
    const retry = parseInt(response.headers.get("Retry-After") || "", 10);
    const problem = new Problem(code, response.status, error.details, Number.isNaN(retry) ? undefined : retry);
    if (code === "unauthorized" && opts.auth) setSession(null);
    throw problem;
  }

  /* ---------- formatting ---------- */

  const currencyMeta = document.querySelector('meta[name="sneakerd:currency"]');
  const currency = (currencyMeta && currencyMeta.content) || "USD";
  let moneyFormat;
  try {
    moneyFormat = new Intl.NumberFormat(undefined, { style: "currency", currency });
  } catch (e) {
    moneyFormat = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  const money = (price) => moneyFormat.format(Number(price));
  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const clockTime = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
  const pad = (n) => String(n).padStart(2, "0");

  function parts(ms) {
    const total = Math.max(0, Math.ceil(ms / 1000));
    return {
      days: Math.floor(total / 86400),
      hours: Math.floor((total % 86400) / 3600),
      minutes: Math.floor((total % 3600) / 60),
      seconds: total % 60,
    };
  }

  function shortCountdown(ms) {
    const p = parts(ms);
    if (p.days > 0) return `${p.days}d ${pad(p.hours)}:${pad(p.minutes)}:${pad(p.seconds)}`;
    if (p.hours > 0) return `${p.hours}:${pad(p.minutes)}:${pad(p.seconds)}`;
    return `${p.minutes}:${pad(p.seconds)}`;
  }

  const pairs = (n) => (n === 1 ? "pair" : "pairs");

  /** What a shopper sees now: the sale window first, then the stock (as the server decides). */
  function statusOf(drop, now) {
    if (drop.endsAt && now >= Date.parse(drop.endsAt)) return "ended";
    if (now < Date.parse(drop.startsAt)) return "upcoming";
    if (drop.stock <= 0) return "sold_out";
    return "live";
  }

  const STATUS_LABEL = { live: "Live", upcoming: "Coming soon", sold_out: "Sold out", ended: "Ended" };

  /** Only https images or this origin's own files: anything else gets the placeholder. */
  function imageFor(url) {
    if (typeof url !== "string" || !url) return PLACEHOLDER;
    try {
      const parsed = new URL(url, location.origin);
      if (parsed.origin === location.origin || parsed.protocol === "https:") return parsed.href;
    } catch (e) {
      /* fall through */
    }
    return PLACEHOLDER;
  }

  function setImage(img, url) {
    const wanted = imageFor(url);
    if (img.dataset.src === wanted) return;
    img.dataset.src = wanted;
    img.src = wanted;
  }

  document.addEventListener(
    "error",
    (event) => {
      const img = event.target;
      if (img instanceof HTMLImageElement && !img.src.endsWith(PLACEHOLDER)) img.src = PLACEHOLDER;
    },
    true,
  );

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showMessage(node, kind, text) {
    if (!node) return;
    if (!text) {
      node.hidden = true;
      node.textContent = "";
      return;
    }
    node.dataset.kind = kind;
    node.textContent = text;
    node.hidden = false;
  }

  /* ---------- header and sign-in dialog (both pages) ---------- */

  let authMode = "signin";

  function renderAccount() {
    const box = $("account");
    if (!box) return;
    box.replaceChildren();
    if (session) {
      const who = el("span", "account__who");
      who.append(el("span", "", "Signed in as "), el("strong", "", session.user.username));
      who.id = "account-name";
      const out = el("button", "btn btn--ghost btn--small", "Sign out");
      out.type = "button";
      out.id = "signout-btn";
      out.addEventListener("click", () => setSession(null));
      box.append(who, out);
    } else {
      const signIn = el("button", "btn btn--ghost btn--small", "Sign in");
      signIn.type = "button";
      signIn.id = "header-signin";
      signIn.addEventListener("click", () => openAuth("signin"));
      const join = el("button", "btn btn--primary btn--small account__join", "Create account");
      join.type = "button";
      join.id = "header-register";
      join.addEventListener("click", () => openAuth("register"));
      box.append(signIn, join);
    }
  }

  function setAuthMode(mode) {
    authMode = mode;
    const register = mode === "register";
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

  function openAuth(mode) {
    const dialog = $("auth-dialog");
    if (!dialog) return;
    setAuthMode(mode);
    if (!dialog.open) dialog.showModal();
    (mode === "register" ? $("auth-username") : $("auth-email")).focus();
  }

  function localCheck(form) {
    for (const input of form.querySelectorAll("input")) {
      if (input.closest("[hidden]")) continue;
      if (!input.checkValidity()) {
        input.focus();
        return FIELD_HINTS[input.name] || "Please fill in every field.";
      }
    }
    return null;
  }

  function setupAuth() {
    const dialog = $("auth-dialog");
    if (!dialog) return;
    $("tab-signin").addEventListener("click", () => setAuthMode("signin"));
    $("tab-register").addEventListener("click", () => setAuthMode("register"));
    $("auth-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close(); // a click on the backdrop
    });
    const form = $("auth-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const problem = localCheck(form);
      if (problem) {
        showMessage($("auth-message"), "error", problem);
        return;
      }
      const submit = $("auth-submit");
      submit.disabled = true;
      submit.setAttribute("aria-busy", "true");
      showMessage($("auth-message"));
      const email = $("auth-email").value.trim();
      const password = $("auth-password").value;
      try {
        const { data } =
          authMode === "register"
            ? await api("POST", "/api/users/register", {
                body: { username: $("auth-username").value.trim(), email, password },
              })
            : await api("POST", "/api/users/login", { body: { email, password } });
        setSession({ token: data.token, user: data.user });
        form.reset();
        dialog.close();
      } catch (e) {
        showMessage($("auth-message"), "error", messageFor(e.code, e));
      } finally {
        submit.disabled = false;
        submit.removeAttribute("aria-busy");
      }
    });
  }

  /* ---------- network bar ---------- */

  function setNetbar(kind, text) {
    const bar = $("netbar");
    if (!bar) return;
    if (!text) {
      bar.hidden = true;
      return;
    }
    bar.dataset.kind = kind;
    bar.textContent = text;
    bar.hidden = false;
  }

  /* ---------- / : the drop list ---------- */

  function indexPage() {
    let drops = [];
    const order = { live: 0, upcoming: 1, sold_out: 2, ended: 3 };

    function stockLine(drop, status, now) {
      if (status === "upcoming") return `Drops in ${shortCountdown(Date.parse(drop.startsAt) - now)}`;
      if (status === "sold_out") return drop.reserved > 0 ? `Sold out · ${drop.reserved} on hold` : "Sold out";
      if (status === "ended") return "Ended";
      return `${drop.stock} of ${drop.initialStock} left`;
    }

    function card(drop) {
      const item = el("li", "card");
      item.dataset.dropId = String(drop.id);
      const link = el("a", "card__link");
      link.href = `/drops/${drop.id}`;
      const media = el("div", "card__media");
      const badge = el("span", "badge");
      const img = el("img");
      img.alt = drop.name;
      img.loading = "lazy";
      img.width = 640;
      img.height = 400;
      setImage(img, drop.imageUrl);
      media.append(badge, img);
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
        const status = statusOf(drop, now);
        item.dataset.status = status;
        const badge = item.querySelector(".badge");
        badge.dataset.status = status;
        badge.textContent = STATUS_LABEL[status];
        item.querySelector(".card__stock").textContent = stockLine(drop, status, now);
      }
    }

    /* Every drop, a page at a time: the list answers at most 200 per page and a
       nextCursor (null on the last page). Bounded, so a huge catalogue cannot keep the
       page fetching forever. */
    async function allDrops() {
      const found = [];
      let cursor = null;
      for (let page = 0; page < MAX_LIST_PAGES; page += 1) {
        const query = cursor ? `limit=200&cursor=${encodeURIComponent(cursor)}` : "limit=200";
        const { data } = await api("GET", `/api/drops?${query}`);
        found.push(...data.drops);
        cursor = data.nextCursor;
        if (!cursor) break;
      }
      return found;
    }

    async function load() {
      try {
        const listed = await allDrops();
        const now = serverNow();
        drops = listed.sort((a, b) => {
          const byStatus = order[statusOf(a, now)] - order[statusOf(b, now)];
          return byStatus || Date.parse(a.startsAt) - Date.parse(b.startsAt) || a.id - b.id;
        });
        $("drops").replaceChildren(...drops.map(card));
        $("drops").setAttribute("aria-busy", "false");
        $("empty").hidden = drops.length > 0;
        showMessage($("message"));
        tick();
      } catch (e) {
        showMessage($("message"), "error", messageFor(e.code, e));
      }
    }

    load();
    setInterval(tick, 1000);
    setInterval(() => {
      if (document.visibilityState === "visible") load();
    }, LIST_REFRESH_MS);
  }

  /* ---------- /drops/{id} : one drop, live ---------- */

  function dropPage() {
    const match = location.pathname.match(/^\/drops\/(\d+)\/?$/);
    const dropId = match ? Number(match[1]) : NaN;
    const state = {
      drop: null,
      seq: -1,
      missing: false,
      removed: false,
      hold: null, // { id, deadline (local ms), total }
      otherHolds: 0, // active holds of mine in this drop besides `hold` (another tab, say)
      bought: 0,
      lastPurchase: null,
      busy: false,
      conn: "connecting",
      reserveKey: null,
      buyKey: null,
    };
    const activity = [];
    let ws = null;
    let attempt = 0;
    let retryTimer = null;
    let retryAt = 0;
    let pingTimer = null;
    let pongTimer = null;
    let shownStock = null;

    const message = (kind, text) => showMessage($("message"), kind, text);

    function fail(error) {
      if (error.code === "unauthorized") {
        message("error", messageFor("unauthorized"));
        return;
      }
      const ctx = { ...error, limit: state.drop ? state.drop.perUserLimit : undefined };
      message(error.code === "drop_not_live" ? "info" : "error", messageFor(error.code, ctx));
    }

    /* -- what is on screen -- */

    function render() {
      const drop = state.drop;
      const product = $("product");
      if (state.missing || state.removed) {
        renderGone();
        return;
      }
      if (!drop) return;
      const now = serverNow();
      const status = statusOf(drop, now);
      product.dataset.status = status;
      product.setAttribute("aria-busy", "false");
      document.title = `${drop.name} · sneakerd`;

      const badge = $("status-badge");
      badge.dataset.status = status;
      badge.textContent = STATUS_LABEL[status];
      setImage($("drop-image"), drop.imageUrl);
      $("drop-image").alt = drop.name;
      $("drop-brand").textContent = drop.brand || "Limited drop";
      $("drop-name").textContent = drop.name;
      $("drop-price").textContent = money(drop.price);
      $("about").hidden = !drop.description;
      $("drop-description").textContent = drop.description || "";

      renderStock(drop, status);
      renderClock(drop, status, now);
      renderActions(drop, status);
    }

    function renderGone() {
      const product = $("product");
      product.dataset.status = "ended";
      product.setAttribute("aria-busy", "false");
      $("status-badge").dataset.status = "ended";
      $("status-badge").textContent = state.removed ? "Removed" : "Not found";
      $("drop-name").textContent = state.removed ? "This drop was removed" : "Drop not found";
      $("drop-brand").textContent = "";
      $("drop-price").textContent = "";
      for (const id of ["stock-panel", "clock", "about", "activity-panel", "reserve-btn", "signin-btn", "hold", "owned"]) {
        $(id).hidden = true;
      }
      $("browse-btn").hidden = false;
      $("limit-note").textContent = "";
      message("info", state.removed ? "This drop was taken down by the store. Have a look at the other drops." : messageFor("not_found_drop"));
    }

    function renderStock(drop, status) {
      const stock = $("stock-count");
      const section = stock.closest(".stock");
      section.dataset.status = status;
      section.dataset.conn = state.conn === "live" ? "fresh" : "stale";
      if (shownStock !== null && shownStock !== drop.stock) {
        stock.classList.remove("bump");
        void stock.offsetWidth; // restart the animation
        stock.classList.add("bump");
      }
      shownStock = drop.stock;
      stock.textContent = String(drop.stock);
      $("stock-label").textContent = `${pairs(drop.stock)} left of ${drop.initialStock}`;
      const total = Math.max(1, drop.initialStock);
      $("meter-sold").style.width = `${(100 * drop.sold) / total}%`;
      $("meter-held").style.width = `${(100 * drop.reserved) / total}%`;
      let detail = `${drop.sold} sold · ${drop.reserved} on hold right now`;
      if (status === "sold_out") {
        detail =
          drop.reserved > 0
            ? `Sold out for now: ${drop.reserved} ${pairs(drop.reserved)} on hold. If a hold runs out, that pair comes back here.`
            : `Sold out — all ${drop.sold} ${pairs(drop.sold)} found a home.`;
      } else if (status === "ended") {
        detail = `This drop has ended. ${drop.sold} ${pairs(drop.sold)} sold.`;
      }
      $("stock-detail").textContent = detail;
      const live = $("live-state");
      live.hidden = false;
      live.dataset.state = state.conn;
      live.textContent = {
        live: "Live updates",
        connecting: "Connecting…",
        reconnecting: "Reconnecting…",
        offline: "Offline",
      }[state.conn];
    }

    function segments(ms) {
      const p = parts(ms);
      const list = [];
      if (p.days > 0) list.push([p.days, p.days === 1 ? "day" : "days"]);
      list.push([pad(p.hours), "hrs"], [pad(p.minutes), "min"], [pad(p.seconds), "sec"]);
      return list.map(([value, unit]) => {
        const seg = el("span", "seg");
        seg.append(el("b", "", String(value)), el("small", "", unit));
        return seg;
      });
    }

    function renderClock(drop, status, now) {
      const starts = Date.parse(drop.startsAt);
      const ends = drop.endsAt ? Date.parse(drop.endsAt) : null;
      let label = "";
      let value = [];
      let note = "";
      if (status === "upcoming") {
        label = "Drops in";
        value = segments(starts - now);
        note = `Opens ${dateTime.format(starts)}`;
      } else if (status === "ended") {
        label = "This drop has ended";
        note = ends ? `Closed ${dateTime.format(ends)}` : "";
      } else if (ends) {
        label = status === "sold_out" ? "Sale window closes in" : "Ends in";
        value = segments(ends - now);
        note = `Went live ${dateTime.format(starts)}`;
      } else {
        label = status === "sold_out" ? "On sale since" : "Live now";
        note = status === "sold_out" ? dateTime.format(starts) : `Went live ${dateTime.format(starts)} · no closing time`;
      }
      $("clock").hidden = false;
      $("clock-label").textContent = label;
      $("clock-value").replaceChildren(...value);
      $("clock-note").textContent = note;
    }

    function renderActions(drop, status) {
      const reserve = $("reserve-btn");
      const signIn = $("signin-btn");
      const hold = $("hold");
      const owned = $("owned");
      const mine = state.bought + state.otherHolds + (state.hold ? 1 : 0);
      const atLimit = mine >= drop.perUserLimit;

      signIn.hidden = Boolean(session);
      signIn.textContent = status === "upcoming" ? "Sign in to be ready" : "Sign in to reserve";
      signIn.disabled = status === "ended";

      hold.hidden = !(session && state.hold);
      if (session && state.hold) {
        $("buy-btn").textContent = `Buy now · ${money(drop.price)}`;
        $("buy-btn").disabled = state.busy;
        $("cancel-btn").disabled = state.busy;
        renderHold();
      }

      owned.hidden = !(session && state.bought > 0 && !state.hold);
      if (!owned.hidden) {
        $("owned-text").textContent =
          state.bought === 1 ? "It’s yours. You bought a pair from this drop." : `It’s yours. You bought ${state.bought} pairs from this drop.`;
        $("owned-note").textContent = state.lastPurchase
          ? `Order #${state.lastPurchase.id} · ${money(state.lastPurchase.price)}`
          : "Thanks for shopping the drop.";
      }

      reserve.hidden = !session || Boolean(state.hold) || (atLimit && state.bought > 0);
      let label = state.bought > 0 ? "Reserve another pair" : "Reserve a pair";
      let disabled = state.busy;
      if (status === "upcoming") {
        label = `Opens at ${clockTime.format(Date.parse(drop.startsAt))}`;
        disabled = true;
      } else if (status === "sold_out") {
        label = "Sold out";
        disabled = true;
      } else if (status === "ended") {
        label = "Drop ended";
        disabled = true;
      } else if (atLimit) {
        label = "Limit reached";
        disabled = true;
      }
      reserve.textContent = state.busy && !state.hold ? "Reserving…" : label;
      reserve.disabled = disabled;
      if (state.busy) reserve.setAttribute("aria-busy", "true");
      else reserve.removeAttribute("aria-busy");

      $("limit-note").textContent =
        drop.perUserLimit === 1 ? "Limit one pair per customer." : `Limit ${drop.perUserLimit} pairs per customer.`;
    }

    function renderHold() {
      if (!state.hold) return;
      const left = state.hold.deadline - Date.now();
      $("hold-countdown").textContent = shortCountdown(left);
      $("hold-bar").style.width = `${Math.max(0, Math.min(100, (100 * left) / state.hold.total))}%`;
      $("hold").dataset.urgent = String(left <= HOLD_URGENT_MS);
    }

    function pushActivity(text, key, at) {
      if (key && activity.some((entry) => entry.key === key)) return;
      activity.push({ text, key, at: at || Date.now() });
      activity.sort((a, b) => b.at - a.at);
      activity.length = Math.min(activity.length, 8);
      const list = $("activity");
      list.replaceChildren(
        ...activity.map((entry) => {
          const item = el("li");
          const when = el("time", "", clockTime.format(entry.at));
          when.dateTime = new Date(entry.at).toISOString();
          item.append(el("span", "", entry.text), when);
          return item;
        }),
      );
      $("activity-empty").hidden = activity.length > 0;
    }

    function holdEnded(text) {
      state.hold = null;
      state.buyKey = null;
      message("error", text);
      render();
    }

    /* -- the clock: countdowns, a drop going live, a hold running out -- */

    let lastStatus = null;
    setInterval(() => {
      if (!state.drop || state.missing || state.removed) return;
      if (state.hold && Date.now() >= state.hold.deadline) {
        holdEnded(messageFor("reservation_expired"));
        return;
      }
      const status = statusOf(state.drop, serverNow());
      if (status !== lastStatus && lastStatus === "upcoming" && status === "live") message();
      lastStatus = status;
      renderClock(state.drop, status, serverNow());
      renderHold();
      if ($("product").dataset.status !== status) render();
    }, 250);

    /* -- the WebSocket -- */

    function setConn(conn) {
      state.conn = conn;
      if (conn === "live") setNetbar();
      else if (conn === "offline") setNetbar("offline", "You’re offline. We’ll catch up as soon as you’re back.");
      if (state.drop) renderStock(state.drop, statusOf(state.drop, serverNow()));
    }

    function applyDrop(drop, seq) {
      state.drop = drop;
      state.seq = seq;
      render();
    }

    function onFrame(frame) {
      if (frame.type === "pong" || frame.type === "error") return;
      if (frame.type === "snapshot") {
        attempt = 0;
        setConn("live");
        applyDrop(frame.drop, frame.seq);
        return;
      }
      if (typeof frame.seq === "number") {
        if (frame.seq <= state.seq) return; // already seen (a snapshot covered it)
        state.seq = frame.seq;
      }
      switch (frame.type) {
        case "stockUpdate":
          if (!state.drop) return;
          state.drop = { ...state.drop, stock: frame.newStock, reserved: frame.reserved, sold: frame.sold };
          break;
        case "reservationExpired":
          if (state.hold && state.hold.id === frame.reservationId) {
            holdEnded(messageFor("reservation_expired"));
          }
          pushActivity("A hold ran out — a pair is back on sale");
          break;
        case "purchaseCompleted":
          pushActivity(
            session && frame.purchaser === session.user.username ? "You bought a pair" : `${frame.purchaser} just bought a pair`,
            `purchase-${frame.purchaseId}`,
          );
          break;
        case "dropUpdated":
          state.drop = frame.drop;
          break;
        case "dropDeleted":
          state.removed = true;
          if (ws) ws.close(1000);
          break;
        default:
          return;
      }
      render();
    }

    function stopTimers() {
      clearInterval(pingTimer);
      clearTimeout(pongTimer);
      pingTimer = null;
      pongTimer = null;
    }

    function connect() {
      clearTimeout(retryTimer);
      retryTimer = null;
      if (ws || state.removed || state.missing) return;
      if (state.conn !== "live") setConn(attempt === 0 ? "connecting" : "reconnecting");
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const socket = new WebSocket(`${scheme}//${location.host}/api/drops/${dropId}/ws`);
      ws = socket;
      socket.addEventListener("message", (event) => {
        if (socket !== ws) return;
        clearTimeout(pongTimer);
        pongTimer = null;
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (e) {
          return;
        }
        if (frame && frame.dropId === dropId) onFrame(frame);
      });
      socket.addEventListener("open", () => {
        if (socket !== ws) return;
        pingTimer = setInterval(() => {
          if (socket.readyState !== WebSocket.OPEN) return;
          socket.send(JSON.stringify({ type: "ping" }));
          if (!pongTimer) pongTimer = setTimeout(() => socket.close(4000, "no answer"), PONG_WITHIN_MS);
        }, PING_EVERY_MS);
      });
      socket.addEventListener("close", () => {
        if (socket !== ws) return;
        ws = null;
        stopTimers();
        if (!state.removed && !state.missing) retry();
      });
    }

    function retry() {
      attempt += 1;
      const ceiling = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (attempt - 1));
      const delay = ceiling / 2 + Math.random() * (ceiling / 2);
      retryAt = Date.now() + delay;
      setConn(navigator.onLine === false ? "offline" : "reconnecting");
      retryTimer = setTimeout(connect, delay);
      if (attempt >= 3) checkDrop(); // a drop removed while we were away refuses the upgrade
    }

    setInterval(() => {
      if (state.conn === "reconnecting" && retryTimer) {
        const seconds = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
        setNetbar("reconnecting", `Live updates paused — reconnecting in ${seconds} s…`);
      }
    }, 250);

    window.addEventListener("online", () => {
      attempt = 0;
      connect();
    });
    window.addEventListener("offline", () => {
      if (state.conn !== "live") setConn("offline");
    });

    async function checkDrop() {
      try {
        const { data } = await api("GET", `/api/drops/${dropId}`);
        if (!state.drop || data.drop.version > state.seq) applyDrop(data.drop, data.drop.version);
      } catch (e) {
        if (e.code === "not_found") {
          state.missing = state.drop === null;
          state.removed = state.drop !== null;
          render();
        }
      }
    }

    async function loadRecentPurchases() {
      try {
        const { data } = await api("GET", `/api/purchases/drop/${dropId}`);
        const recent = data.purchases.slice().sort((a, b) => b.id - a.id).slice(0, 8);
        for (const p of recent) {
          pushActivity(`${p.purchaser} bought a pair`, `purchase-${p.id}`, Date.parse(p.createdAt) - skewMs);
        }
      } catch (e) {
        /* the feed fills in live; nothing to tell the shopper */
      }
    }

    /* -- what the shopper holds and owns -- */

    async function loadMine() {
      if (!session) {
        state.hold = null;
        state.otherHolds = 0;
        state.bought = 0;
        state.lastPurchase = null;
        render();
        return;
      }
      try {
        const [holds, bought] = await Promise.all([
          api("GET", "/api/reservations/user", { auth: true }),
          api("GET", "/api/purchases/user", { auth: true }),
        ]);
        const now = serverNow();
        const active = holds.data.reservations.filter(
          (r) => r.dropId === dropId && r.status === "active" && Date.parse(r.expiresAt) > now,
        );
        const newest = active[0] || null; // newest first
        if (!state.hold || !active.some((r) => r.id === state.hold.id)) {
          state.hold = newest
            ? {
                id: newest.id,
                deadline: Date.parse(newest.expiresAt) - skewMs,
                total: Date.parse(newest.expiresAt) - Date.parse(newest.createdAt),
              }
            : null;
        }
        state.otherHolds = Math.max(0, active.length - (state.hold ? 1 : 0));
        const mine = bought.data.purchases.filter((p) => p.dropId === dropId);
        state.bought = mine.length;
        state.lastPurchase = mine.reduce((a, b) => (a && a.id > b.id ? a : b), null);
      } catch (e) {
        fail(e);
      }
      render();
    }

    async function reserve() {
      if (!session) {
        openAuth("signin");
        return;
      }
      if (state.busy) return;
      state.busy = true;
      message();
      render();
      state.reserveKey = state.reserveKey || newKey(); // kept if the network failed: a retry never holds twice
      const sent = Date.now();
      try {
        const { data } = await api("POST", "/api/reservations", {
          body: { dropId },
          auth: true,
          key: state.reserveKey,
        });
        state.reserveKey = null;
        const r = data.reservation;
        const total = Date.parse(r.expiresAt) - Date.parse(r.createdAt);
        state.hold = { id: r.id, deadline: Math.min(sent + total, Date.parse(r.expiresAt) - skewMs), total };
        state.buyKey = null;
        if (state.hold.deadline <= Date.now()) holdEnded(messageFor("reservation_expired"));
      } catch (e) {
        if (e.code !== "network") state.reserveKey = null;
        fail(e);
        if (e.code === "limit_reached") loadMine();
      } finally {
        state.busy = false;
        render();
      }
    }

    async function buy() {
      if (!state.hold || state.busy) return;
      state.busy = true;
      message();
      $("buy-btn").setAttribute("aria-busy", "true");
      $("buy-btn").textContent = "Buying…";
      render();
      const holdId = state.hold.id;
      state.buyKey = state.buyKey || newKey();
      try {
        const { data } = await api("POST", "/api/purchases", {
          body: { reservationId: holdId },
          auth: true,
          key: state.buyKey,
        });
        state.hold = null;
        state.buyKey = null;
        state.bought += 1;
        state.lastPurchase = data.purchase;
        message("success", `It’s yours! Order #${data.purchase.id} is confirmed.`);
      } catch (e) {
        if (e.code !== "network") state.buyKey = null;
        if (e.code === "reservation_expired" || e.code === "reservation_not_active" || e.code === "not_found") {
          state.hold = null;
          loadMine();
        }
        fail(e);
      } finally {
        state.busy = false;
        $("buy-btn").removeAttribute("aria-busy");
        render();
      }
    }

    async function cancel() {
      if (!state.hold || state.busy) return;
      state.busy = true;
      message();
      render();
      try {
        await api("DELETE", `/api/reservations/${state.hold.id}`, { auth: true });
        state.hold = null;
        state.buyKey = null;
        message("info", "Hold cancelled — the pair is back on sale for everyone.");
      } catch (e) {
        if (e.code === "reservation_not_active" || e.code === "not_found") {
          state.hold = null;
          loadMine();
        }
        fail(e);
      } finally {
        state.busy = false;
        render();
      }
    }

    $("reserve-btn").addEventListener("click", reserve);
    $("signin-btn").addEventListener("click", () => openAuth("signin"));
    $("buy-btn").addEventListener("click", buy);
    $("cancel-btn").addEventListener("click", cancel);
    sessionListeners.push(() => {
      state.hold = null;
      state.reserveKey = null;
      state.buyKey = null;
      message();
      loadMine();
    });

    if (!Number.isInteger(dropId)) {
      state.missing = true;
      render();
      return;
    }
    // A first paint before the socket's snapshot, and a plain answer for an unknown drop.
    checkDrop().then(() => {
      connect();
      if (!state.missing) loadRecentPurchases();
    });
    loadMine();
  }

  /* ---------- start ---------- */

  sessionListeners.push(renderAccount);
  renderAccount();
  setupAuth();
  if (document.body.dataset.page === "index") indexPage();
  else if (document.body.dataset.page === "drop") dropPage();

  window.sneakerd = Object.freeze({ messageFor });
})();
