/**
 * The local gateway's waiting room for scale to zero: a request that finds no replica is held (a bounded
 * queue, a bounded wait) until a replica is up, then forwarded; one that waits past the wake timeout, or
 * finds the queue full, is answered 503 with `Retry-After`. Never a hang, never a connection dropped
 * without an answer. Its counters are what the workflow reads to learn that a wake is wanted.
 */
import type http from 'node:http';

export interface HoldOptions {
  /** The longest a request waits for a replica (`--wake-timeout`), ms. */
  timeoutMs: number;
  /** The most requests held at once; one more is refused at once. */
  maxHeld: number;
  /** The `Retry-After` a refused request is answered with, seconds. */
  retryAfterSeconds: number;
}

interface Held {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  body: Buffer;
  timer: NodeJS.Timeout;
}

/** How often a non-empty queue looks for a replica. */
const POLL_MS = 50;

export class HeldRequests {
  /**
   * Requests ever held (each once, also when a replica refused it after its release and it was held again),
   * answered once a replica was up (each once), and refused (timeout or queue full).
   */
  heldTotal = 0;
  answeredTotal = 0;
  refusedTotal = 0;
  private readonly queue: Held[] = [];
  /** When each held response must be answered by (a request held again keeps its first deadline). */
  private readonly deadlines = new WeakMap<http.ServerResponse, number>();
  private poller: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: HoldOptions,
    /** Whether a replica is up now. */
    private readonly replicaUp: () => boolean,
    /** Forwards one request to the replicas. */
    private readonly dispatch: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void,
  ) {}

  get held(): number {
    return this.queue.length;
  }

  /** Whether this response was held before (and released to a replica that then refused it). */
  wasHeld(res: http.ServerResponse): boolean {
    return this.deadlines.has(res);
  }

  hold(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    if (res.headersSent || res.destroyed) return;
    // A request held again (its replica refused it after a release) is one request: held once, not yet answered.
    const again = this.deadlines.has(res);
    if (again) this.answeredTotal--;
    if (this.queue.length >= this.opts.maxHeld) {
      this.refuse(res, `${this.opts.maxHeld} requests are already waiting for the deployment to wake.`);
      return;
    }
    if (!again) this.heldTotal++;
    const deadline = this.deadlines.get(res) ?? Date.now() + this.opts.timeoutMs;
    this.deadlines.set(res, deadline);
    const entry: Held = {
      req,
      res,
      body,
      timer: setTimeout(
        () => {
          if (this.remove(entry)) this.refuse(res, 'The deployment did not wake within its wake timeout.');
        },
        Math.max(0, deadline - Date.now()),
      ),
    };
    // A client that gives up leaves the queue.
    res.once('close', () => this.remove(entry));
    this.queue.push(entry);
    this.poller ??= setInterval(() => this.release(), POLL_MS);
  }

  /** Stops the timers (the gateway is closing); every held request is refused. */
  close(): void {
    for (const entry of [...this.queue]) {
      this.remove(entry);
      this.refuse(entry.res, 'The endpoint is shutting down.');
    }
  }

  private release(): void {
    if (this.queue.length === 0) {
      clearInterval(this.poller);
      this.poller = undefined;
      return;
    }
    if (!this.replicaUp()) return;
    for (const entry of this.queue.splice(0)) {
      clearTimeout(entry.timer);
      this.answeredTotal++;
      this.dispatch(entry.req, entry.res, entry.body);
    }
  }

  private remove(entry: Held): boolean {
    const at = this.queue.indexOf(entry);
    if (at < 0) return false;
    this.queue.splice(at, 1);
    clearTimeout(entry.timer);
    return true;
  }

  private refuse(res: http.ServerResponse, why: string): void {
    this.refusedTotal++;
    if (res.headersSent || res.destroyed) return;
    const retry = this.opts.retryAfterSeconds;
    const text = JSON.stringify({ error: { code: 'waking', message: `${why} Retry in ${retry}s.` } });
    res.writeHead(503, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'retry-after': String(retry),
    });
    res.end(text);
  }
}
