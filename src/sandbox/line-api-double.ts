/**
 * LINE Messaging API double: a local HTTP server that answers on LINE's real paths
 * (`/v2/bot/...`) so the real `@line/bot-sdk` client can be pointed at it with
 * `new messagingApi.MessagingApiClient({ channelAccessToken, baseURL: double.url })`.
 *
 * Modelled behaviour (see /work/shared/specs/line-messaging.md §2–§5):
 * - Bearer-token auth on every `/v2/...` endpoint (401 otherwise).
 * - `x-line-request-id` (UUID) on every response.
 * - Reply tokens issued by the double, single use, with an expiry.
 * - `X-Line-Retry-Key` on push/multicast: hex-UUID format, remembered for 24 h,
 *   duplicates → 409 + `x-line-accepted-request-id`; any other endpoint → 400.
 * - Message-object validation (count, type, text length, Flex limits, action limits) with
 *   LINE-style `{"message":"The request body has N error(s)","details":[...]}` bodies.
 * - 2 MB body limit (413), malformed JSON (400), non-JSON content type (415).
 * - Failure injection per path (status responses or hangs) and full request recording.
 * - Rich menus (line-rich-menu-double.ts): create/validate/list/get/delete, default menu, per-user
 *   and bulk links, image upload and download on a second origin standing for api-data.line.me
 *   (`dataUrl`), with LINE's object and image checks.
 *
 * Inspection endpoints (no auth, not recorded): `GET /__double/delivered`, `GET /__double/requests`,
 * `GET /__double/richmenus`.
 */
import http from 'node:http';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import {
  byteLength,
  checkOptionalString,
  checkRequiredString,
  type Detail,
  detailsBody,
  isObject,
  type JsonObject,
  type LabelRule,
  type Outcome,
  USER_ID_RE,
  validateAction,
} from './line-api-shared';
import { createRichMenuDouble, type DoubleRichMenu } from './line-rich-menu-double';

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export interface LineApiDoubleOptions {
  /** The only token accepted in `Authorization: Bearer <token>`. */
  channelAccessToken: string;
  /** Port of the API origin (api.line.me); 0 (default) picks a free port. */
  port?: number;
  /** Port of the data origin (api-data.line.me: rich menu images); 0 (default) picks a free port. */
  dataPort?: number;
  /** Interface to bind; default '127.0.0.1'. */
  host?: string;
  /** Lifetime of tokens from `issueReplyToken`; default 60 000 ms. */
  replyTokenTtlMs?: number;
  /**
   * LINE's per-endpoint rate limit for reply, push and multicast (spec §2.5: a token bucket, 2,000/s
   * for reply and push): requests beyond it get 429 `The API rate limit has been exceeded`. Off by
   * default; `setRateLimit` changes it at run time.
   */
  rateLimitPerSecond?: number | null;
}

export interface RecordedRequest {
  /** Which of LINE's two origins received it: api.line.me or api-data.line.me. */
  origin: Origin;
  at: Date;
  method: string;
  /** Path without query string, e.g. '/v2/bot/message/push'. */
  path: string;
  /** Lower-cased header names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  /**
   * Parsed JSON body; the raw string if it was not valid JSON; `<N bytes of image/png>` for a binary
   * upload; undefined when empty or over the limit.
   */
  body: unknown;
  /** Status code the double answered (or will answer, for a hung request). */
  status: number;
  /** Value of the `x-line-request-id` response header. */
  requestId: string;
}

export type DeliveryKind = 'reply' | 'push' | 'multicast';

export interface Delivery {
  kind: DeliveryKind;
  /** Recipient: the push `to`, one multicast recipient, or the user a reply token was issued for. */
  to: string;
  messages: unknown[];
  retryKey?: string;
  requestId: string;
  at: Date;
}

export type InjectedFailure =
  /** Answered instead of handling the request; `headers` e.g. a Retry-After a proxy in front of LINE might add. */
  | { status: number; body?: object; headers?: Record<string, string> }
  /** Hold the response this long; the request itself is handled (and accepted) normally. */
  | { hangMs: number };

export interface DoubleProfile {
  displayName: string;
  pictureUrl?: string;
  statusMessage?: string;
  language?: string;
}

export type Origin = 'api' | 'data';

export type { DoubleRichMenu, RichMenuImage, RichMenuResponse } from './line-rich-menu-double';

export interface LineApiDouble {
  /** Origin only, e.g. 'http://127.0.0.1:41234': stands for https://api.line.me (LINE_API_BASE_URL). */
  readonly url: string;
  /** The data origin, standing for https://api-data.line.me (LINE_DATA_API_BASE_URL): rich menu images. */
  readonly dataUrl: string;
  /** Live list of every request received (including rejected and injected ones), in order of answer. */
  readonly requests: RecordedRequest[];
  /** Closes the server and every connection, including hung ones. Idempotent. */
  close(): Promise<void>;
  /** Issues a 32-hex-char reply token bound to `userId`, valid for `replyTokenTtlMs`. */
  issueReplyToken(userId: string): string;
  /** Accepted sends only (reply, push, one entry per multicast recipient), oldest first. */
  delivered(): Delivery[];
  deliveredTo(userId: string): Delivery[];
  /** Text of text/textV2 messages and altText of flex/template messages sent to `userId`, in order. */
  textsTo(userId: string): string[];
  /** Rich menus created through the API, oldest first, with their uploaded images. */
  richMenus(): DoubleRichMenu[];
  richMenu(richMenuId: string): DoubleRichMenu | null;
  defaultRichMenuId(): string | null;
  /** The per-user link set by POST /v2/bot/user/{userId}/richmenu/{id}, if any. */
  linkedRichMenuId(userId: string): string | null;
  /** The menu LINE would show `userId`: the per-user link, else the default menu. */
  richMenuFor(userId: string): DoubleRichMenu | null;
  /**
   * Clears recorded requests, deliveries, reply tokens, retry keys, pending injections and rich
   * menus with their default and links (not profiles).
   */
  reset(): void;
  /** Sets the profile returned for `userId`; `null` makes the profile unavailable (404). */
  setProfile(userId: string, profile: DoubleProfile | null): void;
  /**
   * Queues failures for the next requests to `path`, one each, in order: an exact path (e.g.
   * '/v2/bot/message/push'), or a RegExp for paths with ids in them (e.g. /\/content$/). An exact
   * path's queue is used before any pattern's.
   */
  injectFailures(path: string | RegExp, failures: InjectedFailure[]): void;
  /** The plan's monthly push limit that GET /v2/bot/message/quota reports (`limited`); null (default) = `none`. */
  setMessageQuota(limit: number | null): void;
  /** Rate limit of the message endpoints per second (token bucket, 100 ms of burst); null = none. */
  setRateLimit(perSecond: number | null): void;
}

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

const MAX_BODY_BYTES = 2 * 1024 * 1024;
/** Past this much uploaded data we stop draining and drop the connection. */
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;
const RETRY_KEY_TTL_MS = 24 * 60 * 60 * 1000;
/** Flex size limits. LINE states "30 KB" / "50 KB"; the double uses the stricter decimal reading. */
const MAX_BUBBLE_BYTES = 30_000;
const MAX_CAROUSEL_BYTES = 50_000;

const AUTH_FAILED_MESSAGE =
  'Authentication failed due to the following reason: invalid token. Confirm that the access token in the authorization header is valid.';

const TO_ID_RE = /^[UCR][0-9a-f]{32}$/;
const RETRY_KEY_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

const MESSAGE_TYPES = [
  'text',
  'textV2',
  'sticker',
  'image',
  'video',
  'audio',
  'location',
  'imagemap',
  'template',
  'flex',
  'coupon',
] as const;
const QUOTABLE_TYPES = new Set(['text', 'textV2', 'sticker', 'image', 'video', 'audio', 'location']);
const TEMPLATE_TYPES = ['buttons', 'confirm', 'carousel', 'image_carousel'] as const;

const PATHS = {
  reply: '/v2/bot/message/reply',
  push: '/v2/bot/message/push',
  multicast: '/v2/bot/message/multicast',
  loading: '/v2/bot/chat/loading/start',
  quota: '/v2/bot/message/quota',
  consumption: '/v2/bot/message/quota/consumption',
  profilePrefix: '/v2/bot/profile/',
} as const;

// ---------------------------------------------------------------------------
// Validation helpers
// ---------------------------------------------------------------------------

function checkHttpsUrl(obj: JsonObject, key: string, base: string, out: Detail[]): void {
  const before = out.length;
  checkRequiredString(obj, key, 2000, base, out);
  if (out.length === before && !String(obj[key]).startsWith('https://')) {
    out.push({ message: 'Must be an HTTPS URL', property: `${base}.${key}` });
  }
}

/**
 * Walks any message sub-tree and validates every action it finds (`action`, `defaultAction`,
 * `actions[]`) plus the Flex rule that a button needs an action. Label limits depend on the
 * parent: Flex button ≤ 40, quick-reply item ≤ 20, template actions ≤ 20.
 */
function walkActions(node: unknown, path: string, out: Detail[]): void {
  if (Array.isArray(node)) {
    node.forEach((child, i) => walkActions(child, `${path}[${i}]`, out));
    return;
  }
  if (!isObject(node)) return;
  if (node.type === 'button' && node.action === undefined) {
    out.push({ message: 'Must be specified', property: `${path}.action` });
  }
  for (const [key, value] of Object.entries(node)) {
    const childPath = `${path}.${key}`;
    if (key === 'action' || key === 'defaultAction') {
      const label: LabelRule | undefined =
        key === 'action' && node.type === 'button'
          ? { max: 40, required: true }
          : key === 'action' && node.type === 'action'
            ? { max: 20, required: true }
            : undefined;
      validateAction(value, childPath, label, out);
    } else if (key === 'actions' && Array.isArray(value)) {
      value.forEach((a, i) => validateAction(a, `${childPath}[${i}]`, { max: 20, required: false }, out));
    } else if (typeof value === 'object' && value !== null) {
      walkActions(value, childPath, out);
    }
  }
}

function validateBubble(bubble: unknown, path: string, out: Detail[]): void {
  if (!isObject(bubble)) {
    out.push({ message: 'Must be an object', property: path });
    return;
  }
  if (bubble.type !== 'bubble') {
    out.push({ message: 'Must be one of the following values: [bubble]', property: `${path}.type` });
    return;
  }
  if (byteLength(bubble) > MAX_BUBBLE_BYTES) {
    out.push({ message: 'Size of the bubble must be 30 KB or less', property: path });
  }
}

function validateFlex(msg: JsonObject, base: string, out: Detail[]): void {
  checkRequiredString(msg, 'altText', 1500, base, out);
  const contents = msg.contents;
  const cPath = `${base}.contents`;
  if (contents === undefined || contents === null) {
    out.push({ message: 'Must be specified', property: cPath });
    return;
  }
  if (!isObject(contents)) {
    out.push({ message: 'Must be an object', property: cPath });
    return;
  }
  if (contents.type === 'bubble') {
    validateBubble(contents, cPath, out);
  } else if (contents.type === 'carousel') {
    const bubbles = contents.contents;
    if (!Array.isArray(bubbles)) {
      out.push({ message: 'Must be specified', property: `${cPath}.contents` });
    } else {
      if (bubbles.length < 1 || bubbles.length > 12) {
        out.push({ message: 'Size must be between 1 and 12', property: `${cPath}.contents` });
      }
      bubbles.forEach((b, i) => validateBubble(b, `${cPath}.contents[${i}]`, out));
    }
    if (byteLength(contents) > MAX_CAROUSEL_BYTES) {
      out.push({ message: 'Size of the carousel must be 50 KB or less', property: cPath });
    }
  } else {
    out.push({ message: 'Must be one of the following values: [bubble, carousel]', property: `${cPath}.type` });
  }
}

function validateMessage(msg: unknown, base: string, out: Detail[]): void {
  if (!isObject(msg)) {
    out.push({ message: 'Must be an object', property: base });
    return;
  }
  const type = msg.type;
  if (type === undefined || type === null) {
    out.push({ message: 'Must be specified', property: `${base}.type` });
    return;
  }
  if (typeof type !== 'string' || !(MESSAGE_TYPES as readonly string[]).includes(type)) {
    out.push({ message: `Must be one of the following values: [${MESSAGE_TYPES.join(', ')}]`, property: `${base}.type` });
    return;
  }
  switch (type) {
    case 'text':
    case 'textV2':
      checkRequiredString(msg, 'text', 5000, base, out);
      if (Array.isArray(msg.emojis) && msg.emojis.length > 20) {
        out.push({ message: 'Size must be between 0 and 20', property: `${base}.emojis` });
      }
      break;
    case 'sticker':
      checkRequiredString(msg, 'packageId', 100, base, out);
      checkRequiredString(msg, 'stickerId', 100, base, out);
      break;
    case 'image':
    case 'video':
      checkHttpsUrl(msg, 'originalContentUrl', base, out);
      checkHttpsUrl(msg, 'previewImageUrl', base, out);
      break;
    case 'audio':
      checkHttpsUrl(msg, 'originalContentUrl', base, out);
      if (typeof msg.duration !== 'number') out.push({ message: 'Must be specified', property: `${base}.duration` });
      break;
    case 'location':
      checkRequiredString(msg, 'title', 100, base, out);
      checkRequiredString(msg, 'address', 100, base, out);
      if (typeof msg.latitude !== 'number') out.push({ message: 'Must be specified', property: `${base}.latitude` });
      if (typeof msg.longitude !== 'number') out.push({ message: 'Must be specified', property: `${base}.longitude` });
      break;
    case 'imagemap':
      checkHttpsUrl(msg, 'baseUrl', base, out);
      checkRequiredString(msg, 'altText', 1500, base, out);
      break;
    case 'template': {
      checkRequiredString(msg, 'altText', 1500, base, out);
      const tpl = msg.template;
      if (!isObject(tpl)) {
        out.push({ message: 'Must be specified', property: `${base}.template` });
      } else if (!(TEMPLATE_TYPES as readonly string[]).includes(String(tpl.type))) {
        out.push({
          message: `Must be one of the following values: [${TEMPLATE_TYPES.join(', ')}]`,
          property: `${base}.template.type`,
        });
      }
      break;
    }
    case 'flex':
      validateFlex(msg, base, out);
      break;
    case 'coupon':
      checkRequiredString(msg, 'couponId', 100, base, out);
      break;
    default:
      break;
  }

  if (msg.quickReply !== undefined) {
    const qr = msg.quickReply;
    if (!isObject(qr) || !Array.isArray(qr.items)) {
      out.push({ message: 'Must be specified', property: `${base}.quickReply.items` });
    } else {
      if (qr.items.length < 1 || qr.items.length > 13) {
        out.push({ message: 'Size must be between 1 and 13', property: `${base}.quickReply.items` });
      }
      qr.items.forEach((item, i) => {
        const itemPath = `${base}.quickReply.items[${i}]`;
        if (!isObject(item) || item.action === undefined) {
          out.push({ message: 'Must be specified', property: `${itemPath}.action` });
        }
      });
    }
  }
  if (isObject(msg.sender)) {
    checkOptionalString(msg.sender, 'name', 20, `${base}.sender`, out);
  }
  // Actions anywhere inside the message (Flex buttons, quick-reply items, templates, imagemaps).
  for (const [key, value] of Object.entries(msg)) {
    if (typeof value === 'object' && value !== null) walkActions(value, `${base}.${key}`, out);
  }
}

function validateMessages(messages: unknown, out: Detail[]): void {
  if (messages === undefined || messages === null) {
    out.push({ message: 'Must be specified', property: 'messages' });
    return;
  }
  if (!Array.isArray(messages)) {
    out.push({ message: 'Must be an array', property: 'messages' });
    return;
  }
  if (messages.length < 1 || messages.length > 5) {
    out.push({ message: 'Size must be between 1 and 5', property: 'messages' });
  }
  messages.forEach((m, i) => validateMessage(m, `messages[${i}]`, out));
}

function validateNotificationDisabled(body: JsonObject, out: Detail[]): void {
  if (body.notificationDisabled !== undefined && typeof body.notificationDisabled !== 'boolean') {
    out.push({ message: 'Must be a boolean', property: 'notificationDisabled' });
  }
}

// ---------------------------------------------------------------------------
// Misc helpers
// ---------------------------------------------------------------------------

function flattenHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function newMessageId(): string {
  // LINE message ids are 18-digit decimal strings.
  let s = String(randomInt(1, 10));
  while (s.length < 18) s += String(randomInt(0, 10));
  return s;
}

function sentMessagesFor(messages: unknown[]): Array<{ id: string; quoteToken?: string }> {
  return messages.map((m) => {
    const id = newMessageId();
    const type = isObject(m) ? String(m.type) : '';
    return QUOTABLE_TYPES.has(type) ? { id, quoteToken: randomBytes(24).toString('base64url') } : { id };
  });
}

function defaultFailureBody(status: number): object {
  if (status === 429) return { message: 'The API rate limit has been exceeded. Try again later.' };
  if (status === 500) return { message: 'Internal server error' };
  if (status === 401) return { message: AUTH_FAILED_MESSAGE };
  return { message: http.STATUS_CODES[status] ?? 'Error' };
}

/** Turns V8's JSON.parse error into LINE's documented message with line/column. */
function jsonErrorMessage(text: string, err: unknown): string {
  const m = /position (\d+)/.exec(err instanceof Error ? err.message : '');
  let line = 1;
  let column = 1;
  if (m) {
    const pos = Math.min(Number(m[1]), text.length);
    const before = text.slice(0, pos);
    const lines = before.split('\n');
    line = lines.length;
    column = (lines[lines.length - 1] ?? '').length + 1;
  }
  return `The request body could not be parsed as JSON (line: ${line}, column: ${column})`;
}

interface ReadBody {
  buf: Buffer;
  size: number;
  tooLarge: boolean;
}

function readBody(req: http.IncomingMessage): Promise<ReadBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_DRAIN_BYTES) {
        req.destroy();
        reject(new Error('request body too large to drain'));
        return;
      }
      if (size > MAX_BODY_BYTES) {
        tooLarge = true;
        chunks.length = 0;
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => resolve({ buf: tooLarge ? Buffer.alloc(0) : Buffer.concat(chunks), size, tooLarge }));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new Error('client closed the request before the body was complete'));
    });
  });
}

// ---------------------------------------------------------------------------
// The double
// ---------------------------------------------------------------------------

interface ReplyTokenState {
  userId: string;
  expiresAt: number;
  used: boolean;
}

interface AcceptedKey {
  requestId: string;
  acceptedAt: number;
  sentMessages?: Array<{ id: string; quoteToken?: string }>;
}

export async function startLineApiDouble(opts: LineApiDoubleOptions): Promise<LineApiDouble> {
  if (typeof opts.channelAccessToken !== 'string' || opts.channelAccessToken.length === 0) {
    throw new TypeError('startLineApiDouble: channelAccessToken must be a non-empty string');
  }
  const channelAccessToken = opts.channelAccessToken;
  const host = opts.host ?? '127.0.0.1';
  const replyTokenTtlMs = opts.replyTokenTtlMs ?? 60_000;

  const requests: RecordedRequest[] = [];
  const deliveries: Delivery[] = [];
  const replyTokens = new Map<string, ReplyTokenState>();
  const retryKeys = new Map<string, AcceptedKey>();
  const injections = new Map<string, InjectedFailure[]>();
  const patternInjections: Array<{ pattern: RegExp; queue: InjectedFailure[] }> = [];
  const profiles = new Map<string, (DoubleProfile & { userId: string }) | null>();
  const hangTimers = new Set<NodeJS.Timeout>();
  const richMenus = createRichMenuDouble();
  let totalUsage = 0;
  let quotaLimit: number | null = null;
  let closed = false;

  function authorized(headers: Record<string, string>): boolean {
    const m = /^Bearer\s+(.+)$/i.exec(headers['authorization'] ?? '');
    return m !== null && m[1]!.trim() === channelAccessToken;
  }

  function lookupRetryKey(key: string): AcceptedKey | undefined {
    const hit = retryKeys.get(key);
    if (hit && Date.now() - hit.acceptedAt >= RETRY_KEY_TTL_MS) {
      retryKeys.delete(key);
      return undefined;
    }
    return hit;
  }

  /** Reads X-Line-Retry-Key: no key when absent; an outcome (400/409) on a bad format or an accepted key. */
  function checkRetryKey(
    headers: Record<string, string>,
  ): { key: string | undefined; outcome?: Outcome } {
    const raw = headers['x-line-retry-key'];
    if (raw === undefined) return { key: undefined };
    if (!RETRY_KEY_RE.test(raw)) {
      return {
        key: undefined,
        outcome: {
          status: 400,
          body: { message: 'The value for the X-Line-Retry-Key header is invalid. Specify a UUID in hexadecimal format.' },
        },
      };
    }
    const key = raw.toLowerCase();
    const accepted = lookupRetryKey(key);
    if (accepted) {
      return {
        key,
        outcome: {
          status: 409,
          body: accepted.sentMessages
            ? { message: 'The retry key is already accepted', sentMessages: accepted.sentMessages }
            : { message: 'The retry key is already accepted' },
          headers: { 'x-line-accepted-request-id': accepted.requestId },
        },
      };
    }
    return { key };
  }

  function handleReply(body: JsonObject, requestId: string, at: Date): Outcome {
    const details: Detail[] = [];
    if (body.replyToken === undefined || body.replyToken === null || body.replyToken === '') {
      details.push({ message: 'Must be specified', property: 'replyToken' });
    } else if (typeof body.replyToken !== 'string') {
      details.push({ message: 'Must be a string', property: 'replyToken' });
    }
    validateMessages(body.messages, details);
    validateNotificationDisabled(body, details);
    if (details.length > 0) return { status: 400, body: detailsBody(details) };

    const token = replyTokens.get(body.replyToken as string);
    if (!token || token.used || Date.now() >= token.expiresAt) {
      return { status: 400, body: { message: 'Invalid reply token' } };
    }
    token.used = true;
    const messages = body.messages as unknown[];
    deliveries.push({ kind: 'reply', to: token.userId, messages, requestId, at });
    return { status: 200, body: { sentMessages: sentMessagesFor(messages) } };
  }

  function handlePush(body: JsonObject, headers: Record<string, string>, requestId: string, at: Date): Outcome {
    const rk = checkRetryKey(headers);
    if (rk.outcome) return rk.outcome;

    const details: Detail[] = [];
    if (body.to === undefined || body.to === null || body.to === '') {
      details.push({ message: 'Must be specified', property: 'to' });
    } else if (typeof body.to !== 'string' || !TO_ID_RE.test(body.to)) {
      details.push({ message: 'Must be a valid user, group or room ID', property: 'to' });
    }
    validateMessages(body.messages, details);
    validateNotificationDisabled(body, details);
    if (body.customAggregationUnits !== undefined) {
      const units = body.customAggregationUnits;
      if (!Array.isArray(units) || units.length > 1) {
        details.push({ message: 'Size must be between 0 and 1', property: 'customAggregationUnits' });
      } else {
        units.forEach((u, i) => {
          if (typeof u !== 'string' || !/^[A-Za-z0-9_]{1,30}$/.test(u)) {
            details.push({
              message: 'Must be 1-30 characters of [A-Za-z0-9_]',
              property: `customAggregationUnits[${i}]`,
            });
          }
        });
      }
    }
    if (details.length > 0) return { status: 400, body: detailsBody(details) };

    const messages = body.messages as unknown[];
    const to = body.to as string;
    const sentMessages = sentMessagesFor(messages);
    if (rk.key) retryKeys.set(rk.key, { requestId, acceptedAt: Date.now(), sentMessages });
    deliveries.push({ kind: 'push', to, messages, ...(rk.key ? { retryKey: rk.key } : {}), requestId, at });
    // Quota counts one message per recipient per request (spec §2.6).
    totalUsage += 1;
    return { status: 200, body: { sentMessages } };
  }

  function handleMulticast(body: JsonObject, headers: Record<string, string>, requestId: string, at: Date): Outcome {
    const rk = checkRetryKey(headers);
    if (rk.outcome) return rk.outcome;

    const details: Detail[] = [];
    const to = body.to;
    if (!Array.isArray(to)) {
      details.push({ message: 'Must be specified', property: 'to' });
    } else {
      if (to.length < 1 || to.length > 500) {
        details.push({ message: 'Size must be between 1 and 500', property: 'to' });
      }
      to.forEach((id, i) => {
        if (typeof id !== 'string' || !USER_ID_RE.test(id)) {
          details.push({ message: 'Must be a valid user ID', property: `to[${i}]` });
        }
      });
    }
    validateMessages(body.messages, details);
    validateNotificationDisabled(body, details);
    if (details.length > 0) return { status: 400, body: detailsBody(details) };

    const messages = body.messages as unknown[];
    const recipients = [...new Set(to as string[])];
    if (rk.key) retryKeys.set(rk.key, { requestId, acceptedAt: Date.now() });
    for (const userId of recipients) {
      deliveries.push({ kind: 'multicast', to: userId, messages, ...(rk.key ? { retryKey: rk.key } : {}), requestId, at });
    }
    totalUsage += recipients.length;
    return { status: 200, body: {} };
  }

  function handleLoading(body: JsonObject): Outcome {
    const details: Detail[] = [];
    if (body.chatId === undefined || body.chatId === null || body.chatId === '') {
      details.push({ message: 'Must be specified', property: 'chatId' });
    } else if (typeof body.chatId !== 'string' || !USER_ID_RE.test(body.chatId)) {
      details.push({ message: 'Must be a user ID (one-on-one chats only)', property: 'chatId' });
    }
    const s = body.loadingSeconds;
    if (s !== undefined && (typeof s !== 'number' || !Number.isInteger(s) || s < 5 || s > 60 || s % 5 !== 0)) {
      details.push({ message: 'Must be a multiple of 5 between 5 and 60', property: 'loadingSeconds' });
    }
    if (details.length > 0) return { status: 400, body: detailsBody(details) };
    return { status: 202, body: {} };
  }

  function handleProfile(userId: string): Outcome {
    const configured = profiles.get(userId);
    if (configured === null) return { status: 404, body: { message: 'Not found' } };
    if (configured) return { status: 200, body: configured };
    if (!USER_ID_RE.test(userId)) return { status: 404, body: { message: 'Not found' } };
    return {
      status: 200,
      body: { displayName: `測試用戶 ${userId.slice(-4)}`, userId, language: 'zh-TW' },
    };
  }

  /** Routes an authenticated, size-checked request to the API origin or the data origin. */
  // One token bucket per message endpoint (LINE counts per method + path), refilled continuously.
  let rateLimitPerSecond = opts.rateLimitPerSecond ?? null;
  const buckets = new Map<string, { tokens: number; at: number }>();
  function overRateLimit(path: string): boolean {
    if (rateLimitPerSecond === null || (path !== PATHS.reply && path !== PATHS.push && path !== PATHS.multicast)) return false;
    const capacity = Math.max(1, rateLimitPerSecond / 10);
    const now = performance.now();
    const b = buckets.get(path) ?? { tokens: capacity, at: now };
    b.tokens = Math.min(capacity, b.tokens + ((now - b.at) / 1000) * rateLimitPerSecond);
    b.at = now;
    buckets.set(path, b);
    if (b.tokens < 1) return true;
    b.tokens -= 1;
    return false;
  }

  function route(
    origin: Origin,
    method: string,
    path: string,
    headers: Record<string, string>,
    raw: Buffer,
    requestId: string,
    at: Date,
  ): Outcome {
    type Route = { method: string; body: 'json' | 'binary' | 'none'; run: (json: JsonObject) => Outcome };
    let r: Route | undefined;
    if (origin === 'data') {
      // api-data.line.me serves content only (reference "Domain name").
      const rm = richMenus.routeData(method, path);
      if (rm) {
        const contentType = headers['content-type'] ?? '';
        r = { method: rm.method, body: rm.body, run: (json) => rm.run({ json, bytes: raw, contentType }) };
      }
    } else if (path === PATHS.reply) {
      r = { method: 'POST', body: 'json', run: (b) => handleReply(b, requestId, at) };
    } else if (path === PATHS.push) {
      r = { method: 'POST', body: 'json', run: (b) => handlePush(b, headers, requestId, at) };
    } else if (path === PATHS.multicast) {
      r = { method: 'POST', body: 'json', run: (b) => handleMulticast(b, headers, requestId, at) };
    } else if (path === PATHS.loading) {
      r = { method: 'POST', body: 'json', run: (b) => handleLoading(b) };
    } else if (path === PATHS.quota) {
      r = { method: 'GET', body: 'none', run: () => ({ status: 200, body: quotaLimit === null ? { type: 'none' } : { type: 'limited', value: quotaLimit } }) };
    } else if (path === PATHS.consumption) {
      r = { method: 'GET', body: 'none', run: () => ({ status: 200, body: { totalUsage } }) };
    } else if (path.startsWith(PATHS.profilePrefix) && path.length > PATHS.profilePrefix.length) {
      let userId: string | undefined;
      try {
        userId = decodeURIComponent(path.slice(PATHS.profilePrefix.length));
      } catch {
        userId = undefined; // malformed percent-encoding: falls through to 404
      }
      if (userId !== undefined && !userId.includes('/')) {
        const id = userId;
        r = { method: 'GET', body: 'none', run: () => handleProfile(id) };
      }
    } else {
      const rm = richMenus.routeApi(method, path);
      if (rm) r = { method: rm.method, body: rm.body, run: (json) => rm.run({ json, bytes: raw, contentType: '' }) };
    }
    if (!r) return { status: 404, body: { message: 'Not found' } };
    if (method !== r.method) return { status: 405, body: { message: 'Method Not Allowed' }, headers: { allow: r.method } };

    // LINE accepts X-Line-Retry-Key only on push/multicast/narrowcast/broadcast.
    if (headers['x-line-retry-key'] !== undefined && path !== PATHS.push && path !== PATHS.multicast) {
      return { status: 400, body: { message: 'The X-Line-Retry-Key header is not supported for this API' } };
    }

    if (r.body !== 'json') return r.run({});
    const rawText = raw.toString('utf8');
    const contentType = headers['content-type'] ?? '';
    if (rawText.length > 0 && !/^application\/json\b/i.test(contentType)) {
      return { status: 415, body: { message: `The content type, ${contentType || '(none)'}, is not supported` } };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawText);
    } catch (err) {
      return { status: 400, body: { message: jsonErrorMessage(rawText, err) } };
    }
    if (!isObject(parsed)) {
      return { status: 400, body: { message: 'The request body must be a JSON object' } };
    }
    return r.run(parsed);
  }

  /** Writes a JSON answer, or raw bytes when the body is a Buffer (a downloaded image). */
  function writeJson(res: http.ServerResponse, outcome: Outcome): void {
    if (res.headersSent || res.destroyed) return;
    const binary = Buffer.isBuffer(outcome.body);
    const payload = binary ? (outcome.body as Buffer) : JSON.stringify(outcome.body);
    res.writeHead(outcome.status, {
      'content-type': binary ? 'application/octet-stream' : 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(payload),
      ...(outcome.headers ?? {}),
    });
    res.end(payload);
  }

  async function handle(origin: Origin, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const at = new Date();
    res.setHeader('x-line-request-id', requestId);
    const method = (req.method ?? 'GET').toUpperCase();
    const path = new URL(req.url ?? '/', 'http://double.invalid').pathname;
    const headers = flattenHeaders(req.headers);

    // Inspection endpoints: no auth, not recorded.
    if (path.startsWith('/__double/')) {
      req.resume();
      if (method === 'GET' && path === '/__double/delivered') {
        writeJson(res, { status: 200, body: deliveries });
      } else if (method === 'GET' && path === '/__double/requests') {
        writeJson(res, { status: 200, body: requests });
      } else if (method === 'GET' && path === '/__double/richmenus') {
        writeJson(res, { status: 200, body: richMenuSummary() });
      } else {
        writeJson(res, { status: 404, body: { message: 'Not found' } });
      }
      return;
    }

    let raw: ReadBody;
    try {
      raw = await readBody(req);
    } catch {
      // The client went away mid-body; record it with nginx's "client closed request" code.
      requests.push({ origin, at, method, path, headers, body: undefined, status: 499, requestId });
      return;
    }
    let recordedBody: unknown = undefined;
    if (!raw.tooLarge && raw.size > 0) {
      const type = headers['content-type'] ?? '';
      if (/^(image|video|audio)\/|^application\/octet-stream/i.test(type)) {
        recordedBody = `<${raw.size} bytes of ${type}>`;
      } else {
        const rawText = raw.buf.toString('utf8');
        try {
          recordedBody = JSON.parse(rawText);
        } catch {
          recordedBody = rawText;
        }
      }
    }

    let delayMs = 0;
    let outcome: Outcome | undefined;
    const queue = injections.get(path) ?? patternInjections.find((p) => p.queue.length > 0 && p.pattern.test(path))?.queue;
    const injected = queue?.shift();
    if (queue && queue.length === 0) injections.delete(path);
    if (injected) {
      if ('hangMs' in injected) {
        delayMs = injected.hangMs;
      } else {
        outcome = { status: injected.status, body: injected.body ?? defaultFailureBody(injected.status), headers: injected.headers };
      }
    }

    if (!outcome) {
      if (raw.tooLarge) {
        outcome = { status: 413, body: { message: 'Request Entity Too Large' } };
      } else if (!authorized(headers)) {
        outcome = { status: 401, body: { message: AUTH_FAILED_MESSAGE } };
      } else if (overRateLimit(path)) {
        outcome = { status: 429, body: defaultFailureBody(429) };
      } else {
        outcome = route(origin, method, path, headers, raw.buf, requestId, at);
      }
    }

    requests.push({ origin, at, method, path, headers, body: recordedBody, status: outcome.status, requestId });

    if (delayMs > 0) {
      // The request was already handled (and, if valid, accepted); only the answer is late.
      const finalOutcome = outcome;
      const timer = setTimeout(() => {
        hangTimers.delete(timer);
        writeJson(res, finalOutcome);
      }, delayMs);
      hangTimers.add(timer);
    } else {
      writeJson(res, outcome);
    }
  }

  function richMenuSummary() {
    return {
      defaultRichMenuId: richMenus.defaultRichMenuId(),
      links: richMenus.links(),
      richmenus: richMenus.list().map(({ menu, image }) => ({
        ...menu,
        image: image ? { contentType: image.contentType, width: image.width, height: image.height, bytes: image.bytes.length } : null,
      })),
    };
  }

  async function listen(origin: Origin, port: number): Promise<{ server: http.Server; url: string }> {
    const server = http.createServer((req, res) => {
      handle(origin, req, res).catch((err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        writeJson(res, { status: 500, body: { message: `LINE API double internal error: ${message}` } });
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return { server, url: `http://${hostForUrl}:${address.port}` };
  }

  // Two origins like LINE's: api.line.me and api-data.line.me (rich menu images, content).
  const apiOrigin = await listen('api', opts.port ?? 0);
  let dataOrigin: { server: http.Server; url: string };
  try {
    dataOrigin = await listen('data', opts.dataPort ?? 0);
  } catch (err) {
    await new Promise((r) => apiOrigin.server.close(r));
    throw err;
  }
  const url = apiOrigin.url;

  const api: LineApiDouble = {
    url,
    dataUrl: dataOrigin.url,
    get requests() {
      return requests;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const t of hangTimers) clearTimeout(t);
      hangTimers.clear();
      await Promise.all(
        [apiOrigin.server, dataOrigin.server].map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
    },
    issueReplyToken(userId: string): string {
      if (typeof userId !== 'string' || userId.length === 0) {
        throw new TypeError('issueReplyToken: userId must be a non-empty string');
      }
      const token = randomBytes(16).toString('hex');
      replyTokens.set(token, { userId, expiresAt: Date.now() + replyTokenTtlMs, used: false });
      return token;
    },
    delivered() {
      return [...deliveries];
    },
    deliveredTo(userId: string) {
      return deliveries.filter((d) => d.to === userId);
    },
    textsTo(userId: string) {
      const texts: string[] = [];
      for (const d of deliveries) {
        if (d.to !== userId) continue;
        for (const m of d.messages) {
          if (!isObject(m)) continue;
          if ((m.type === 'text' || m.type === 'textV2') && typeof m.text === 'string') texts.push(m.text);
          else if ((m.type === 'flex' || m.type === 'template') && typeof m.altText === 'string') texts.push(m.altText);
        }
      }
      return texts;
    },
    setRateLimit(perSecond: number | null) {
      rateLimitPerSecond = perSecond;
      buckets.clear();
    },
    reset() {
      requests.length = 0;
      deliveries.length = 0;
      replyTokens.clear();
      retryKeys.clear();
      injections.clear();
      patternInjections.length = 0;
      richMenus.reset();
      totalUsage = 0;
    },
    richMenus: () => richMenus.list(),
    richMenu: (richMenuId: string) => richMenus.get(richMenuId),
    defaultRichMenuId: () => richMenus.defaultRichMenuId(),
    linkedRichMenuId: (userId: string) => richMenus.linkedRichMenuId(userId),
    richMenuFor: (userId: string) => richMenus.richMenuFor(userId),
    setProfile(userId: string, profile: DoubleProfile | null) {
      profiles.set(userId, profile === null ? null : { ...profile, userId });
    },
    injectFailures(path: string | RegExp, failures: InjectedFailure[]) {
      for (const f of failures) {
        if ('hangMs' in f) {
          if (!Number.isFinite(f.hangMs) || f.hangMs < 0) throw new RangeError('injectFailures: hangMs must be >= 0');
        } else if (!Number.isInteger(f.status) || f.status < 100 || f.status > 599) {
          throw new RangeError('injectFailures: status must be an HTTP status code');
        }
      }
      if (path instanceof RegExp) {
        // A sticky or global RegExp would remember lastIndex between tests of different paths.
        patternInjections.push({ pattern: new RegExp(path.source, path.flags.replace(/[gy]/g, '')), queue: [...failures] });
        return;
      }
      const queue = injections.get(path) ?? [];
      queue.push(...failures);
      injections.set(path, queue);
    },
    setMessageQuota(limit: number | null) {
      quotaLimit = limit;
    },
  };
  return api;
}
