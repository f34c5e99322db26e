import axios, { AxiosError } from 'axios';
import type { Logger } from 'pino';
import { escapeHtml } from '../../html';
import { GatewayError } from '../payment-gateway';

/**
 * What ECPay's hosts have in common, whichever API they serve (AIO payments, logistics): form
 * POSTs answered in text, an HTTP 403 that means "too fast, leave us alone for a while", and
 * browser-posted forms that must be auto-submitted from our own page.
 */

/**
 * ECPay answers HTTP 403 when its APIs are called too fast and asks for a pause of about
 * 30 minutes (ecpay-aio.md §1.1, §11; ecpay-logistics.md §2). The pause is shared by every
 * process that calls that ECPay host (the shop keeps it in Redis); while it lasts, nothing is sent.
 */
export interface EcpayCallGate {
  /** Milliseconds until ECPay may be called again; 0 when it may be called now. */
  pausedForMs(): Promise<number>;
  /** Send nothing to ECPay for this long. */
  pause(ms: number): Promise<void>;
}

/** A pause kept in this process only (tests and tools; the shop shares one through Redis). */
export class MemoryCallGate implements EcpayCallGate {
  private until = 0;
  async pausedForMs(): Promise<number> {
    return Math.max(0, this.until - Date.now());
  }
  async pause(ms: number): Promise<void> {
    this.until = Math.max(this.until, Date.now() + ms);
  }
}

/** How long to leave ECPay alone after an HTTP 403 (spec §11: "rate-limited; wait 30 min"). */
export const RATE_LIMIT_PAUSE_MS = 30 * 60_000;

/**
 * Milliseconds until ECPay may be called again (0: now). A gate that cannot be read (Redis away)
 * does not stop the shop: the calls go ahead, and a new 403 says so again.
 */
export async function readPause(gate: EcpayCallGate, logger?: Logger): Promise<number> {
  try {
    return await gate.pausedForMs();
  } catch (err) {
    logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'ecpay pause not readable; calling anyway');
    return 0;
  }
}

export interface EcpayPost {
  url: string;
  params: Record<string, string>;
  /** Name of the API for logs and error messages. */
  op: string;
  /**
   * True when sending twice is harmless (queries): a timeout, a lost connection or a 5xx may then
   * be retried. False for calls that create or change something at ECPay: after a timeout or a
   * 500/504 ECPay may have acted, so only "nothing was sent" (connection refused, DNS) and 503 are
   * retryable.
   */
  idempotent: boolean;
  timeoutMs: number;
  gate: EcpayCallGate;
  logger?: Logger;
}

/** POSTs a form to ECPay and returns the body text of a 200; everything else becomes GatewayError. */
export async function postEcpayForm(p: EcpayPost): Promise<string> {
  const { op, params, logger } = p;
  const ids = { merchantTradeNo: params.MerchantTradeNo, allPayLogisticsId: params.AllPayLogisticsID };
  const pausedMs = await readPause(p.gate, logger);
  if (pausedMs > 0) {
    // Nothing is sent while ECPay asked us to wait: always safe to try again after the pause.
    throw new GatewayError('PAUSED', `ECPay calls are paused for ${Math.ceil(pausedMs / 1000)} s after an HTTP 403`, true, {
      op,
      retryAfterMs: pausedMs,
    });
  }
  const started = Date.now();
  let res;
  try {
    res = await axios.post<string>(p.url, new URLSearchParams(params).toString(), {
      timeout: p.timeoutMs,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'text/html, text/plain, */*' },
      responseType: 'text',
      transformResponse: [(d: unknown) => d],
      validateStatus: () => true,
      maxRedirects: 0,
    });
  } catch (err) {
    const e = err as AxiosError;
    const code = e.code ?? 'UNKNOWN';
    const timedOut = code === 'ECONNABORTED' || code === 'ETIMEDOUT';
    // Nothing reached ECPay when the connection could not even be opened: always safe to retry.
    const notSent = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
    logger?.warn({ op, ...ids, code, ms: Date.now() - started }, 'ecpay call failed');
    if (timedOut) {
      throw new GatewayError('TIMEOUT', `ECPay ${op} timed out after ${p.timeoutMs} ms`, p.idempotent, { op });
    }
    throw new GatewayError('NETWORK', `ECPay ${op} network error (${code})`, p.idempotent || notSent, { op, code });
  }
  const text = typeof res.data === 'string' ? res.data : String(res.data ?? '');
  logger?.debug({ op, ...ids, status: res.status, ms: Date.now() - started }, 'ecpay call');
  if (res.status === 403) {
    // ECPay's rate limit: it did not act on the request; no process calls it again for 30 minutes.
    try {
      await p.gate.pause(RATE_LIMIT_PAUSE_MS);
    } catch (err) {
      logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'ecpay pause not stored');
    }
    logger?.warn({ op, ...ids, pauseMs: RATE_LIMIT_PAUSE_MS }, 'ecpay answered 403: pausing every ECPay call');
    throw new GatewayError('HTTP_STATUS', `ECPay ${op} answered HTTP 403 (rate limit)`, true, {
      op,
      status: 403,
      retryAfterMs: RATE_LIMIT_PAUSE_MS,
      body: text.slice(0, 200),
    });
  }
  if (res.status !== 200) {
    // 5xx is theirs and may pass; other statuses will not improve. An action that changes
    // something is sent again only after a 503, the one 5xx that says the request was not served:
    // after a 500 or 504 ECPay may have acted, and a second refund (or parcel) must never happen.
    const retryable = res.status >= 500 && (p.idempotent || res.status === 503);
    throw new GatewayError('HTTP_STATUS', `ECPay ${op} answered HTTP ${res.status}`, retryable, {
      op,
      status: res.status,
      body: text.slice(0, 200),
    });
  }
  return text;
}

export interface EcpayHostOptions {
  /** Per-request timeout for server-to-server calls (default 15 s). */
  timeoutMs?: number;
  logger?: Logger;
  now?: () => Date;
  /** Shared pause after an HTTP 403; defaults to one kept in memory. */
  gate?: EcpayCallGate;
}

/** What every client of one ECPay host has: its origin, a timeout, a clock, the 403 pause, the POST. */
export abstract class EcpayHostClient {
  protected readonly origin: string;
  protected readonly timeoutMs: number;
  protected readonly logger: Logger | undefined;
  protected readonly now: () => Date;
  protected readonly gate: EcpayCallGate;

  constructor(apiBaseUrl: string, opts: EcpayHostOptions) {
    this.origin = apiBaseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 15000;
    this.logger = opts.logger;
    this.now = opts.now ?? (() => new Date());
    this.gate = opts.gate ?? new MemoryCallGate();
  }

  /**
   * Milliseconds until ECPay may be called again after an HTTP 403 (0: now). A gate that cannot be
   * read (Redis away) does not stop the shop: the calls go ahead, and a new 403 says so again.
   */
  pausedForMs(): Promise<number> {
    return readPause(this.gate, this.logger);
  }

  /** POSTs a form to a path of the host and returns the body text; transport failures become GatewayError. */
  protected post(path: string, params: Record<string, string>, op: string, idempotent: boolean): Promise<string> {
    return postEcpayForm({
      url: `${this.origin}${path}`,
      params,
      op,
      idempotent,
      timeoutMs: this.timeoutMs,
      gate: this.gate,
      logger: this.logger,
    });
  }
}

/** A form body whose every field is a single string (express gives arrays for repeated names); null otherwise. */
export function singleStringFields(body: unknown): Record<string, string> | null {
  if (body === null || typeof body !== 'object') return null;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (typeof v !== 'string') return null;
    out[k] = v;
  }
  return out;
}

export interface EcpayForm {
  /** Absolute URL the browser posts to. */
  action: string;
  /** Every field to post, CheckMacValue included. */
  fields: Record<string, string>;
}

export interface AutoSubmitTexts {
  title: string;
  body: string;
  button: string;
}

/**
 * A complete UTF-8 page that posts the form on load as a top-level navigation (never in an
 * iframe: ECPay's pages refuse to be framed), with a button in case scripts are off.
 */
export function renderAutoSubmitPage(form: EcpayForm, texts: AutoSubmitTexts, formId: string): string {
  // The id also goes into the script: only plain identifiers, never data.
  if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(formId)) throw new RangeError('formId must be a plain identifier');
  const inputs = Object.entries(form.fields)
    .map(([k, v]) => `      <input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('\n');
  return `<!DOCTYPE html>
<html lang="zh-Hant-TW">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>${escapeHtml(texts.title)}</title>
  <style>
    body { font-family: system-ui, -apple-system, "PingFang TC", "Noto Sans TC", "Microsoft JhengHei", sans-serif; margin: 0; padding: 2.5rem 1.25rem; text-align: center; color: #222; }
    p { margin: 0 0 1.5rem; }
    button { font-size: 1.1rem; padding: .8rem 2.2rem; border: 0; border-radius: .5rem; background: #06c755; color: #fff; }
  </style>
</head>
<body>
  <p>${escapeHtml(texts.body)}</p>
  <form id="${formId}" method="post" action="${escapeHtml(form.action)}" accept-charset="UTF-8">
${inputs}
    <button type="submit">${escapeHtml(texts.button)}</button>
  </form>
  <script>document.getElementById('${formId}').submit();</script>
</body>
</html>
`;
}
