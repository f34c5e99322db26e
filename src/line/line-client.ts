import { HTTPFetchError, messagingApi } from '@line/bot-sdk';
import type { MessageQuota } from '../domain/notices';
import type { Logger } from '../logger';

/** Defined with the domain's notices (the daily summary carries it); the back office reads it from here. */
export type { MessageQuota };

export type SendOutcome =
  | { ok: true; requestId: string | null; duplicate: boolean }
  | {
      ok: false;
      status: number | null;
      retryable: boolean;
      /** 429 for the per-second rate limit (not the monthly limit): wait, then send again. */
      rateLimited: boolean;
      /** From a Retry-After header, when one came (LINE documents none; a proxy may add one). */
      retryAfterMs: number | null;
      invalidReplyToken: boolean;
      message: string;
      requestId: string | null;
    };

/** The few Messaging API calls the shop makes, with LINE's error semantics already applied. */
export interface LineApi {
  reply(replyToken: string, messages: messagingApi.Message[]): Promise<SendOutcome>;
  push(to: string, messages: messagingApi.Message[], retryKey: string): Promise<SendOutcome>;
  getProfile(userId: string): Promise<{ displayName: string } | null>;
  showLoading(chatId: string, seconds: number): Promise<void>;
  /** This month's push quota (limit null = no limit) and use so far; null when LINE does not answer. */
  messageQuota(): Promise<MessageQuota | null>;
}

export interface LineClientOptions {
  channelAccessToken: string;
  apiBaseUrl: string;
  timeoutMs?: number;
  logger: Logger;
}

export class Timeout extends Error {}

/** The SDK has no timeout option (spec §5.7): race the call against a timer. */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Timeout(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function bodyMessage(body: string): string {
  try {
    const j = JSON.parse(body) as { message?: string };
    return j.message ?? body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}

/**
 * Classifies a failed send per LINE's rules (spec §2.4, §2.6): 409 = already accepted,
 * 429 rate limit / 5xx / network / timeout = retry, monthly limit and other 4xx = give up.
 */
export function classifySendError(err: unknown): SendOutcome {
  if (err instanceof HTTPFetchError) {
    const requestId = err.headers?.get?.('x-line-request-id') ?? null;
    const message = bodyMessage(err.body ?? '');
    if (err.status === 409) {
      return { ok: true, duplicate: true, requestId: err.headers?.get?.('x-line-accepted-request-id') ?? requestId };
    }
    const monthly = err.status === 429 && /monthly limit/i.test(message);
    const retryable = !monthly && (err.status === 429 || err.status >= 500);
    return {
      ok: false,
      status: err.status,
      retryable,
      rateLimited: err.status === 429 && !monthly,
      retryAfterMs: retryAfterMs(err.headers?.get?.('retry-after') ?? null),
      invalidReplyToken: err.status === 400 && /reply token/i.test(message),
      message,
      requestId,
    };
  }
  const message = err instanceof Timeout ? 'timeout' : err instanceof Error ? `network: ${err.message}` : 'unknown error';
  return { ok: false, status: null, retryable: true, rateLimited: false, retryAfterMs: null, invalidReplyToken: false, message, requestId: null };
}

/** Retry-After as seconds or an HTTP date; null when absent or unreadable. Capped at 5 minutes. */
export function retryAfterMs(v: string | null): number | null {
  if (!v) return null;
  const ms = /^\d+$/.test(v.trim()) ? Number(v.trim()) * 1000 : Date.parse(v) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), 300_000) : null;
}

export class LineClient implements LineApi {
  private readonly api: messagingApi.MessagingApiClient;
  private readonly timeoutMs: number;
  private readonly log: Logger;

  constructor(opts: LineClientOptions) {
    this.api = new messagingApi.MessagingApiClient({
      channelAccessToken: opts.channelAccessToken,
      baseURL: opts.apiBaseUrl,
    });
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.log = opts.logger;
  }

  async reply(replyToken: string, messages: messagingApi.Message[]): Promise<SendOutcome> {
    try {
      const res = await withTimeout(this.api.replyMessageWithHttpInfo({ replyToken, messages }), this.timeoutMs);
      return { ok: true, duplicate: false, requestId: res.httpResponse.headers.get('x-line-request-id') };
    } catch (err) {
      const out = classifySendError(err);
      this.log.warn({ outcome: out }, 'LINE reply failed');
      return out;
    }
  }

  async push(to: string, messages: messagingApi.Message[], retryKey: string): Promise<SendOutcome> {
    try {
      const res = await withTimeout(this.api.pushMessageWithHttpInfo({ to, messages }, retryKey), this.timeoutMs);
      return { ok: true, duplicate: false, requestId: res.httpResponse.headers.get('x-line-request-id') };
    } catch (err) {
      const out = classifySendError(err);
      if (!out.ok) this.log.warn({ outcome: out, retryKey }, 'LINE push failed');
      return out;
    }
  }

  async getProfile(userId: string): Promise<{ displayName: string } | null> {
    try {
      const p = await withTimeout(this.api.getProfile(userId), Math.min(this.timeoutMs, 3000));
      return { displayName: p.displayName };
    } catch (err) {
      this.log.info({ err: err instanceof Error ? err.message : String(err) }, 'LINE profile unavailable');
      return null;
    }
  }

  async showLoading(chatId: string, seconds: number): Promise<void> {
    try {
      await withTimeout(this.api.showLoadingAnimation({ chatId, loadingSeconds: seconds }), 2000);
    } catch {
      // Cosmetic only: a missing spinner must never fail the request it decorates.
    }
  }

  async messageQuota(): Promise<MessageQuota | null> {
    try {
      const ms = Math.min(this.timeoutMs, 3000);
      const [quota, usage] = await Promise.all([withTimeout(this.api.getMessageQuota(), ms), withTimeout(this.api.getMessageQuotaConsumption(), ms)]);
      return { limit: quota.type === 'limited' ? (quota.value ?? 0) : null, used: usage.totalUsage };
    } catch (err) {
      this.log.info({ err: err instanceof Error ? err.message : String(err) }, 'LINE message quota unavailable');
      return null;
    }
  }
}
