/* A drop's status is the server's word: every drop object the API and the WebSocket send
 * carries `status` (upcoming, live, sold_out, ended), decided by the one rule in
 * sneakerd/domain/model.py. The page never re-decides the sale window; it only counts down
 * to the moment the server's answer will change, and then asks the server again.
 */

export const STATUS_LABEL = {
  live: "Live",
  upcoming: "Coming soon",
  sold_out: "Sold out",
  ended: "Ended",
  paused: "Paused",
};

/** The status a badge shows: "paused" while an operator has paused a drop that has not ended
 * (a paused drop refuses reserve and purchase, whatever its window and stock say). */
export const shownStatus = (drop) => (drop.paused && drop.status !== "ended" ? "paused" : drop.status);

/** The order drops are listed in: what can be bought now first. */
export const STATUS_ORDER = { live: 0, upcoming: 1, sold_out: 2, ended: 3 };

const isOpen = (status) => status === "live" || status === "sold_out";

/**
 * When time alone next changes this drop's status (server epoch ms), or null if it never
 * will: an upcoming drop opens at `startsAt`, an open one closes at `endsAt` (if it has one).
 * This is what the countdowns count down to.
 */
export function nextChange(drop) {
  if (drop.status === "upcoming") return Date.parse(drop.startsAt);
  if (isOpen(drop.status) && drop.endsAt) return Date.parse(drop.endsAt);
  return null;
}

/** True once `now` (server ms) has reached `nextChange`: the status in hand is out of date. */
export function isDue(drop, now) {
  const at = nextChange(drop);
  return at !== null && now >= at;
}

/**
 * The drop after a `stockUpdate` frame, which carries counts but no status. Within an open
 * sale window the stock alone tells live from sold out (the server's rule checks the window
 * first, then the stock), so only that half is followed here; the window stays the server's.
 */
export function withCounts(drop, stock, reserved, sold) {
  const status = isOpen(drop.status) ? (stock > 0 ? "live" : "sold_out") : drop.status;
  return { ...drop, stock, reserved, sold, status };
}
