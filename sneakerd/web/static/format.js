/* Numbers, times and countdowns as a shopper reads them, in the browser's own locale.
 *
 * The currency is the page's (`<meta name="sneakerd:currency">`): the API sends prices as
 * plain decimal strings, and a locale without that currency still gets two decimals.
 */

const currencyMeta = document.querySelector('meta[name="sneakerd:currency"]');
const currency = (currencyMeta && currencyMeta.content) || "USD";

function moneyFormat() {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency });
  } catch (e) {
    return new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
}

const moneyFormatter = moneyFormat();

/** A price from the API ("180.00") as money. */
export const money = (price) => moneyFormatter.format(Number(price));
export const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
export const clockTime = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
export const pad = (n) => String(n).padStart(2, "0");
export const pairs = (n) => (n === 1 ? "pair" : "pairs");

/** Milliseconds as whole days, hours, minutes and seconds (rounded up, never below zero). */
export function parts(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  return {
    days: Math.floor(total / 86400),
    hours: Math.floor((total % 86400) / 3600),
    minutes: Math.floor((total % 3600) / 60),
    seconds: total % 60,
  };
}

/** "1d 02:03:04", "2:03:04" or "3:04": as short as the time left allows. */
export function shortCountdown(ms) {
  const p = parts(ms);
  if (p.days > 0) return `${p.days}d ${pad(p.hours)}:${pad(p.minutes)}:${pad(p.seconds)}`;
  if (p.hours > 0) return `${p.hours}:${pad(p.minutes)}:${pad(p.seconds)}`;
  return `${p.minutes}:${pad(p.seconds)}`;
}
