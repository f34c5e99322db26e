import axios from 'axios';

/**
 * Server-to-server form notifications as ECPay sends them (AIO ReturnURL / PaymentInfoURL,
 * logistics status): a urlencoded POST, no redirects followed, re-sent on a schedule until the
 * answer is exactly HTTP 200 `1|OK`. Shared by the sandboxes; tracks everything in flight so a
 * test can wait for quiet (idle) and a sandbox can stop cleanly (close).
 */

export interface FormDelivery {
  url: string;
  /** 1 for the first delivery of a chain. */
  attempt: number;
  fields: Record<string, string>;
  /** HTTP status of the answer, null when the request failed. */
  status: number | null;
  body: string | null;
  error?: string;
  at: Date;
}

export interface FormNotifierOptions {
  /** Waits before each re-send; its length is the number of re-sends. */
  retryDelaysMs: readonly number[];
  /** Timeout of each POST. */
  timeoutMs: number;
  now: () => Date;
}

export const acknowledged = (d: FormDelivery): boolean => d.status === 200 && d.body === '1|OK';

export class FormNotifier {
  private readonly pending = new Set<Promise<unknown>>();
  private readonly sleepers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  private readonly abort = new AbortController();
  private closed = false;

  constructor(private readonly opts: FormNotifierOptions) {}

  /** Keeps a promise in the set idle() waits for. */
  track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    void p.then(
      () => this.pending.delete(p),
      () => this.pending.delete(p),
    );
    return p;
  }

  /** One POST; never throws (a failure is recorded in the delivery). */
  async deliver(url: string, fields: Record<string, string>, attempt: number): Promise<FormDelivery> {
    const rec: FormDelivery = { url, attempt, fields, status: null, body: null, at: this.opts.now() };
    try {
      const res = await axios.post<string>(url, new URLSearchParams(fields).toString(), {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'text/html' },
        timeout: this.opts.timeoutMs,
        responseType: 'text',
        transformResponse: [(d: unknown) => d],
        validateStatus: () => true,
        // ECPay does not follow redirects: a 301/302/308 loses the notification.
        maxRedirects: 0,
        signal: this.abort.signal,
      });
      rec.status = res.status;
      rec.body = typeof res.data === 'string' ? res.data : String(res.data ?? '');
    } catch (err) {
      rec.error = err instanceof Error ? err.message : String(err);
    }
    return rec;
  }

  /**
   * Delivers a notification and keeps re-sending it in the background until `1|OK`.
   * `fieldsFor(attempt)` may change the body of re-sends; `onDelivery` sees every delivery (for
   * the sandbox's log). Resolves with what onDelivery made of the first one.
   */
  send<R>(url: string, fieldsFor: (attempt: number) => Record<string, string>, onDelivery: (d: FormDelivery) => R): Promise<R> {
    let resolveFirst!: (r: R) => void;
    const first = new Promise<R>((r) => (resolveFirst = r));
    void this.track(
      (async () => {
        const d1 = await this.deliver(url, fieldsFor(1), 1);
        resolveFirst(onDelivery(d1));
        if (acknowledged(d1)) return;
        for (let i = 0; i < this.opts.retryDelaysMs.length; i++) {
          await this.sleep(this.opts.retryDelaysMs[i]!);
          if (this.closed) return;
          const d = await this.deliver(url, fieldsFor(i + 2), i + 2);
          onDelivery(d);
          if (acknowledged(d) || this.closed) return;
        }
      })(),
    );
    return first;
  }

  /** Resolves once nothing is being delivered or waiting for a re-send. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Stops re-send timers and aborts deliveries in flight. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sleepers) {
      clearTimeout(s.timer);
      s.wake();
    }
    this.sleepers.clear();
    this.abort.abort();
    await Promise.allSettled([...this.pending]);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.sleepers.delete(entry);
          resolve();
        }, ms),
        wake: () => resolve(),
      };
      this.sleepers.add(entry);
    });
  }
}
