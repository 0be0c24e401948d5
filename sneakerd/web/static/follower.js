/* Following one drop over its WebSocket (docs/API.md, "WebSocket (per drop)").
 *
 * The socket can drop at any time (a phone changing networks, a server restart), so the
 * follower reconnects for as long as it is asked to, with jittered exponential backoff so a
 * crowd of pages does not come back in one wave. A `snapshot` is the whole truth and comes
 * first after every (re)connection, so nothing is replayed here: frames at or below the last
 * seq are dropped by the caller. A ping every PING_EVERY_MS that gets no answer within
 * PONG_WITHIN_MS means a dead connection the browser has not noticed: it is closed and retried.
 */

const PING_EVERY_MS = 25000;
const PONG_WITHIN_MS = 10000;
const MAX_BACKOFF_MS = 15000;

/** How long to wait before retry number `attempt` (1, 2, …): half to all of a doubling ceiling. */
export function backoff(attempt) {
  const ceiling = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/**
 * Follows drop `dropId` once `start()` is called, until `stop()`.
 * `onFrame(frame)` gets every frame of this drop but pongs; `onConn(conn)` hears the
 * connection's state: connecting, live (a snapshot arrived), reconnecting or offline;
 * `onRetry(attempt)` hears each scheduled retry; `onOpen()` may return a message to send first on
 * each new connection (who is watching, for the waiting room).
 */
export class Follower {
  constructor(dropId, { onFrame, onConn, onRetry, onOpen }) {
    this.dropId = dropId;
    this.handlers = { onFrame, onConn, onRetry, onOpen };
    this.conn = "connecting";
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.retryTimer = null;
    this.retryAt = 0;
    this.pingTimer = null;
    this.pongTimer = null;
    window.addEventListener("online", () => {
      this.attempt = 0;
      this.connect();
    });
    window.addEventListener("offline", () => {
      if (this.conn !== "live") this.setConn("offline");
    });
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  /** For good: the drop is gone. Closes the socket and cancels any retry. */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws) this.ws.close(1000);
  }

  /** Send `message` (an object) if the socket is open; nothing otherwise (`onOpen` covers the
   * next connection). */
  send(message) {
    if (message && this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  /** Milliseconds until the next reconnection attempt, or null if none is waiting. */
  retryIn() {
    return this.retryTimer ? this.retryAt - Date.now() : null;
  }

  setConn(conn) {
    this.conn = conn;
    this.handlers.onConn(conn);
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.ws || this.stopped) return;
    if (this.conn !== "live") this.setConn(this.attempt === 0 ? "connecting" : "reconnecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/api/drops/${this.dropId}/ws`);
    this.ws = socket;
    socket.addEventListener("message", (event) => {
      if (socket === this.ws) this.received(event.data);
    });
    socket.addEventListener("open", () => {
      if (socket !== this.ws) return;
      this.startPinging(socket);
      const hello = this.handlers.onOpen ? this.handlers.onOpen() : null;
      if (hello) socket.send(JSON.stringify(hello));
    });
    socket.addEventListener("close", () => {
      if (socket !== this.ws) return;
      this.ws = null;
      this.stopTimers();
      if (!this.stopped) this.retry();
    });
  }

  received(text) {
    clearTimeout(this.pongTimer); // any frame shows the connection is alive
    this.pongTimer = null;
    let frame;
    try {
      frame = JSON.parse(text);
    } catch (e) {
      return;
    }
    if (!frame || frame.dropId !== this.dropId || frame.type === "pong") return;
    if (frame.type === "snapshot") {
      this.attempt = 0;
      this.setConn("live");
    }
    this.handlers.onFrame(frame);
  }

  startPinging(socket) {
    this.pingTimer = setInterval(() => {
      if (socket.readyState !== WebSocket.OPEN) return;
      socket.send(JSON.stringify({ type: "ping" }));
      if (!this.pongTimer) this.pongTimer = setTimeout(() => socket.close(4000, "no answer"), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  stopTimers() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pingTimer = null;
    this.pongTimer = null;
  }

  retry() {
    this.attempt += 1;
    const delay = backoff(this.attempt);
    this.retryAt = Date.now() + delay;
    this.setConn(navigator.onLine === false ? "offline" : "reconnecting");
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.handlers.onRetry(this.attempt);
  }
}
