/* Messages in a shopper's words: every API error code (and the page's own problems, such as
 * "network") becomes a sentence. Shoppers never see a code; an unknown one reads as the
 * generic bad_request sentence, so a server newer than the page still says something human.
 */

const MESSAGES = {
  out_of_stock:
    "Sold out — every pair is sold or on hold right now. Holds that run out come back here, so keep this page open.",
  limit_reached: (ctx) =>
    `You already have ${ctx.limit === 1 ? "your pair" : `${ctx.limit || "the most"} pairs`} from this drop — that’s the limit per customer.`,
  not_admitted: "This drop has a waiting room: join the queue, and reserve when it’s your turn.",
  drop_not_live: "This drop hasn’t started yet. Reserving opens when the countdown reaches zero.",
  drop_ended: "This drop has ended, so it can’t be reserved or bought any more.",
  drop_paused: "Sales of this drop are paused for a moment. Holds keep running — try again shortly.",
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
  already_entered: "You’re already in this draw.",
  entries_not_open: "Entries to this draw haven’t opened yet.",
  entries_closed: "Entries to this draw are closed.",
  raffle_only: "This drop is sold by a draw: enter it instead of reserving.",
  not_a_raffle: "This drop isn’t a draw.",
};

const FIELD_HINTS = {
  username: "Usernames are 3 to 32 letters, digits, dots, dashes or underscores.",
  email: "Please enter a valid email address.",
  password: "Passwords need 8 to 128 characters.",
};

function fieldMessages(details) {
  const hints = Object.keys(details || {})
    .map((field) => FIELD_HINTS[field])
    .filter(Boolean);
  return hints.length ? hints.join(" ") : "Some details don’t look right. Please check them and try again.";
}

/** The sentence for an API error code (or a problem from this script). */
export function messageFor(code, ctx) {
  const entry = MESSAGES[code] || MESSAGES.bad_request;
  return typeof entry === "function" ? entry(ctx || {}) : entry;
}

/** What to say about one form field the browser found invalid before anything was sent. */
export function fieldHint(name) {
  return FIELD_HINTS[name] || "Please fill in every field.";
}
