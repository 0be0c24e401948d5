/* The server's time, estimated from the Date header of each API answer.
 *
 * Countdowns and holds are the server's, so a shopper whose computer clock is off still sees
 * a drop open and a hold run out when the server says. The header has one-second resolution,
 * so the estimate adds half a second and is good to about that.
 */

let skewMs = 0; // server time minus local time

/** Take the server's time from an answer's Date header (answers without one change nothing). */
export function noteServerTime(response) {
  const date = Date.parse(response.headers.get("Date") || "");
  if (!Number.isNaN(date)) skewMs = date + 500 - Date.now();
}

/** Now on the server's clock, in epoch milliseconds. */
export const serverNow = () => Date.now() + skewMs;

/** A server time (epoch ms, or an ISO string) as a local `Date.now()` time, for local timers. */
export function toLocal(serverTime) {
  const ms = typeof serverTime === "string" ? Date.parse(serverTime) : serverTime;
  return ms - skewMs;
}
