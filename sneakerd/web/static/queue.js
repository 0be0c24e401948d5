/* The waiting room of a drop with `queue: true`: join the line, watch your place move, and
 * reserve once admitted (with the ticket's admission token).
 *
 * The ticket comes from the API (POST to join, GET to read it again); the drop's WebSocket
 * tells this page when its place or admission changes (`{type: "queue"}` frames, sent once the
 * page has said who it is with `{type: "auth"}`), and the ticket is read again then, since only
 * the API hands out the admission token. A slow poll covers a socket that is down.
 */

import { api } from "./api.js";
import { $ } from "./dom.js";
import { getSession } from "./session.js";

const POLL_MS = 5000;

export class QueueSpot {
  /** `page`: drop-view.js's page (`{state, dropId, render, fail}`); state.ticket is ours. */
  constructor(page) {
    this.page = page;
    this.lastRead = 0;
    this.reading = null;
  }

  get active() {
    const drop = this.page.state.drop;
    return Boolean(drop && drop.queue);
  }

  /** The admission token to reserve with, while admitted. */
  token() {
    const ticket = this.page.state.ticket;
    return ticket && ticket.admitted ? ticket.admissionToken || null : null;
  }

  /** Read my ticket again (none: not in the queue). */
  async load() {
    const { state, dropId } = this.page;
    if (!this.active || !getSession()) {
      state.ticket = null;
      return;
    }
    if (this.reading) return this.reading;
    this.lastRead = Date.now();
    this.reading = (async () => {
      try {
        const { data } = await api("GET", `/api/drops/${dropId}/queue/me`, { auth: true });
        state.ticket = data.ticket;
      } catch (e) {
        if (e.code === "not_found") state.ticket = null;
      } finally {
        this.reading = null;
      }
      this.page.render();
    })();
    return this.reading;
  }

  async join() {
    const { state, dropId } = this.page;
    if (state.busy) return;
    state.busy = true;
    this.page.render();
    try {
      const { data } = await api("POST", `/api/drops/${dropId}/queue`, { auth: true });
      state.ticket = data.ticket;
    } catch (e) {
      this.page.fail(e);
    } finally {
      state.busy = false;
      this.page.render();
    }
  }

  /** A `queue` frame: my place or admission moved; the token comes with a fresh read. */
  onFrame(frame) {
    const ticket = this.page.state.ticket;
    if (ticket) Object.assign(ticket, { position: frame.position, admitted: frame.admitted });
    this.load();
  }

  /** What the WebSocket is first told: who is watching (so it sends my place). */
  hello() {
    const session = getSession();
    return session && this.active ? { type: "auth", token: session.token } : null;
  }

  tick() {
    const ticket = this.page.state.ticket;
    if (ticket && !ticket.done && Date.now() - this.lastRead > POLL_MS) this.load();
  }
}

/** Whether the reserve button may show (a queued drop: only once admitted). */
export function queueAllowsReserve(state) {
  return !(state.drop && state.drop.queue) || Boolean(state.ticket && state.ticket.admitted);
}

/** The queue panel: the join button, then my place, then "it's your turn". */
export function renderQueue(state) {
  const panel = $("queue");
  const drop = state.drop;
  const session = getSession();
  panel.hidden = !(drop && drop.queue && session) || drop.status === "ended" || Boolean(state.hold);
  if (panel.hidden) return;
  const ticket = state.ticket;
  const join = $("queue-btn");
  join.hidden = Boolean(ticket);
  join.disabled = state.busy;
  $("queue-status").textContent = queueWords(ticket, drop);
}

function queueWords(ticket, drop) {
  if (!ticket) return "This drop has a waiting room: join the queue, and reserve when it’s your turn.";
  if (ticket.admitted) return "It’s your turn — reserve your pair now.";
  if (ticket.done) return "Your turn in the queue is over.";
  if (ticket.position === null) {
    return drop.status === "upcoming"
      ? "You’re in the queue. Places are drawn at random when the drop opens, so arriving early doesn’t matter."
      : "You’re in the queue.";
  }
  const wait = ticket.estimatedWaitSeconds;
  const about = wait === null ? "" : ` · about ${wait < 60 ? `${wait} s` : `${Math.ceil(wait / 60)} min`}`;
  return `You’re number ${ticket.position} in the queue${about}.`;
}
