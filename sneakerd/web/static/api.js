/* The REST client: one `api()` call per request, JSON both ways, errors as a `Problem`.
 *
 * Every failure, including no network at all, becomes a Problem with the API's error code, so
 * callers only ever turn codes into sentences (words.js). A 401 on a signed-in call means the
 * token is no good any more: the session is dropped here, once, for every caller.
 */

import { noteServerTime } from "./clock.js";
import { getSession, setSession } from "./session.js";

/** An API error: its code (docs/API.md), HTTP status, details and Retry-After seconds. */
export class Problem extends Error {
  constructor(code, status, details, retryAfter) {
    super(code);
    this.code = code;
    this.status = status;
    this.details = details || null;
    this.retryAfter = retryAfter;
  }
}

/** A fresh Idempotency-Key: the same key on a retry makes the server do the thing once. */
export function newKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function readJson(response) {
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch (e) {
    return null;
  }
}

function problemOf(response, data) {
  const error = (data && data.error) || {};
  const code = error.code || (response.status >= 500 ? "unavailable" : "bad_request");
  const retry = parseInt(response.headers.get("Retry-After") || "", 10);
  return new Problem(code, response.status, error.details, Number.isNaN(retry) ? undefined : retry);
}

/**
 * `method path` with `options.body` as JSON; `options.auth` sends the session's token (and
 * fails with `unauthorized` at once without one), `options.key` an Idempotency-Key,
 * `options.headers` any more headers (the waiting room's Admission-Token).
 * Resolves to `{status, data}` on a 2xx; rejects with a Problem otherwise.
 */
export async function api(method, path, options) {
  const opts = options || {};
  const headers = { Accept: "application/json" };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (opts.auth) {
    const session = getSession();
    if (!session) throw new Problem("unauthorized", 401);
    headers.Authorization = `Bearer ${session.token}`;
  }
  if (opts.key) headers["Idempotency-Key"] = opts.key;
  Object.assign(headers, opts.headers || {});
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
  const data = await readJson(response);
  if (response.ok) return { status: response.status, data };
  const problem = problemOf(response, data);
  if (problem.code === "unauthorized" && opts.auth) setSession(null);
  throw problem;
}
