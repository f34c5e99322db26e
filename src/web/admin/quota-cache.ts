import type { MessageQuota } from '../../line/line-client';

/**
 * LINE's push quota for the dashboard, asked at most every few minutes per process (LINE's own
 * figure is approximate, and the dashboard must not wait on LINE at every view). A failed ask is
 * remembered for a minute, so a LINE outage does not slow every page down either.
 */
export class QuotaCache {
  private value: MessageQuota | null = null;
  private until = 0;
  private pending: Promise<MessageQuota | null> | null = null;

  constructor(
    private readonly fetchQuota: () => Promise<MessageQuota | null>,
    private readonly ttlMs = 5 * 60_000,
    private readonly failureTtlMs = 60_000,
  ) {}

  async get(): Promise<MessageQuota | null> {
    if (Date.now() < this.until) return this.value;
    this.pending ??= this.fetchQuota()
      .then((v) => {
        this.value = v;
        this.until = Date.now() + (v ? this.ttlMs : this.failureTtlMs);
        return v;
      })
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }
}
