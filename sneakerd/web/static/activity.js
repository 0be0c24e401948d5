/* The drop page's live activity feed: the newest few purchases and holds running out. */

import { $, el } from "./dom.js";
import { clockTime } from "./format.js";

const SHOWN = 8;

/** The feed, newest first; an entry with a `key` already shown (say, a purchase) is skipped. */
export class ActivityFeed {
  constructor() {
    this.entries = [];
  }

  push(text, key, at) {
    if (key && this.entries.some((entry) => entry.key === key)) return;
    this.entries.push({ text, key, at: at || Date.now() });
    this.entries.sort((a, b) => b.at - a.at);
    this.entries.length = Math.min(this.entries.length, SHOWN);
    $("activity").replaceChildren(
      ...this.entries.map((entry) => {
        const item = el("li");
        const when = el("time", "", clockTime.format(entry.at));
        when.dateTime = new Date(entry.at).toISOString();
        item.append(el("span", "", entry.text), when);
        return item;
      }),
    );
    $("activity-empty").hidden = this.entries.length > 0;
  }
}
