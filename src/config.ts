import { z } from 'zod';
import { checkCellPhone, checkContactName } from './gateways/ecpay-logistics/recipient';
import { DEFAULT_SUB_TYPES, parseSubTypeList, type CvsSubType } from './gateways/ecpay-logistics/sub-types';

/**
 * The only module that reads process.env. Everything else receives the frozen Config.
 * parseConfig() takes any env-like record so tests and the sandbox can build configs without
 * touching the real environment.
 */

export const SINOPAC_SANDBOX_BASE_URL = 'https://apisbx.sinopac.com/funBIZ-Sbx/QPay.WebAPI/api/';
export const ECPAY_STAGE_ORIGIN = 'https://payment-stage.ecpay.com.tw';
export const ECPAY_PRODUCTION_ORIGIN = 'https://payment.ecpay.com.tw';
export const ECPAY_LOGISTICS_STAGE_ORIGIN = 'https://logistics-stage.ecpay.com.tw';
export const ECPAY_LOGISTICS_PRODUCTION_ORIGIN = 'https://logistics.ecpay.com.tw';

const minutes = (def: number) =>
  z.coerce.number().positive().finite().default(def);

/** Minutes that may be 0 (a reminder lead of 0 turns that reminder off). */
const minutesOrZero = (def: number) =>
  z.coerce.number().nonnegative().finite().default(def);

/** The kinds of owner push that OWNER_NOTIFY can switch on and off (`alert`: payment anomalies). */
export const OWNER_NOTIFY_KINDS = ['order', 'paid', 'expired', 'cancelled', 'low-stock', 'sold-out', 'alert', 'summary'] as const;
export type OwnerNotifyKind = (typeof OWNER_NOTIFY_KINDS)[number];

const ownerNotify = z
  .string()
  .default('')
  .transform((s, ctx) => {
    const items = s.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
    if (items.length === 0 || (items.length === 1 && items[0] === 'all')) return [...OWNER_NOTIFY_KINDS];
    if (items.length === 1 && items[0] === 'none') return [];
    const unknown = items.filter((x) => !(OWNER_NOTIFY_KINDS as readonly string[]).includes(x));
    if (unknown.length) {
      ctx.addIssue({ code: 'custom', message: `unknown kind ${unknown.join(', ')}; known: ${OWNER_NOTIFY_KINDS.join(', ')}, or all / none` });
      return z.NEVER;
    }
    return OWNER_NOTIFY_KINDS.filter((k) => items.includes(k));
  });
const twd = (def: number) => z.coerce.number().int().min(0).max(1_000_000).default(def);

const optionalString = z
  .string()
  .trim()
  .transform((s) => (s === '' ? undefined : s))
  .optional();

const originUrl = z
  .string()
  .url()
  .transform((s) => new URL(s).origin);

/** An exact decimal (at most 6 places) as a fraction, so that money × rate never meets binary rounding. */
export interface Ratio {
  readonly num: number;
  readonly den: number;
}

/** A member tier: reached with `minPoints` points earned in the last 12 months; its discount in percent. */
export interface MemberTier {
  readonly name: string;
  readonly minPoints: number;
  readonly discountPercent: number;
}

const decimalRatio = (def: string) =>
  z
    .string()
    .trim()
    .default(def)
    .refine((s) => /^\d{1,9}(\.\d{1,6})?$/.test(s), 'must be a decimal number such as 0.01')
    .transform((s): Ratio => {
      const [int, frac = ''] = s.split('.');
      const den = 10 ** frac.length;
      return { num: Number(int) * den + Number(frac || '0'), den };
    });

/** `name:points:percent,…` → tiers by ascending points; the first must start at 0 points. */
function parseTiers(s: string, ctx: z.RefinementCtx): MemberTier[] {
  const tiers: MemberTier[] = [];
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([^:]{1,20}):(\d{1,9}):(\d{1,2})$/.exec(part);
    if (!m) {
      ctx.addIssue({ code: 'custom', message: `"${part}" is not name:points:discountPercent (percent 0–99)` });
      return z.NEVER;
    }
    tiers.push({ name: m[1]!.trim(), minPoints: Number(m[2]), discountPercent: Number(m[3]) });
  }
  tiers.sort((a, b) => a.minPoints - b.minPoints);
  if (tiers.length === 0 || tiers[0]!.minPoints !== 0 || new Set(tiers.map((t) => t.minPoints)).size !== tiers.length) {
    ctx.addIssue({ code: 'custom', message: 'needs a tier at 0 points and distinct thresholds' });
    return z.NEVER;
  }
  return tiers;
}

function parseTopupAmounts(s: string, ctx: z.RefinementCtx): number[] {
  const amounts = s.split(',').map((p) => p.trim()).filter(Boolean);
  if (amounts.length === 0 || amounts.length > 6 || amounts.some((a) => !/^\d{1,6}$/.test(a) || Number(a) < 1)) {
    ctx.addIssue({ code: 'custom', message: 'must be 1 to 6 whole TWD amounts between 1 and 999999' });
    return z.NEVER;
  }
  return [...new Set(amounts.map(Number))];
}

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  WORKER_METRICS_PORT: optionalString.pipe(z.string().regex(/^\d{1,5}$/).transform(Number).pipe(z.number().int().min(1).max(65535)).optional()),
  DATABASE_URL: z.string().min(1, 'is required'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  PUBLIC_BASE_URL: optionalString.pipe(z.string().url().optional()),
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('lineshop'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LINE_CHANNEL_SECRET: z.string().min(1, 'is required'),
  LINE_CHANNEL_ACCESS_TOKEN: z.string().min(1, 'is required'),
  LINE_API_BASE_URL: originUrl.default('https://api.line.me'),
  LINE_DATA_API_BASE_URL: originUrl.default('https://api-data.line.me'),
  LINE_MESSAGES_PER_SECOND: z.coerce.number().int().min(1).max(100_000).default(1900),
  HOLD_MINUTES_DEFAULT: minutes(30),
  HOLD_MINUTES_CARD: minutes(60),
  HOLD_MINUTES_ATM: minutes(4320),
  HOLD_MINUTES_CVS: minutes(10080),
  RECONCILE_AFTER_MINUTES: minutes(40),
  RECONCILE_EVERY_MINUTES: minutes(5),
  LOGISTICS_RECONCILE_AFTER_MINUTES: minutes(240),
  LOGISTICS_RECONCILE_EVERY_MINUTES: minutes(30),
  SHOP_OWNER_LINE_USER_IDS: z.string().default(''),
  SINOPAC_SHOP_NO: optionalString,
  SINOPAC_HASH_A1: optionalString,
  SINOPAC_HASH_A2: optionalString,
  SINOPAC_HASH_B1: optionalString,
  SINOPAC_HASH_B2: optionalString,
  SINOPAC_KEY_ID: optionalString,
  SINOPAC_API_BASE_URL: z.string().url().default(SINOPAC_SANDBOX_BASE_URL),
  ECPAY_MERCHANT_ID: optionalString,
  ECPAY_HASH_KEY: optionalString,
  ECPAY_HASH_IV: optionalString,
  ECPAY_API_BASE_URL: originUrl.default(ECPAY_STAGE_ORIGIN),
  ECPAY_CREDIT_CHECK_CODE: optionalString,
  LOW_STOCK_THRESHOLD: z.coerce.number().int().min(0).max(1_000_000).default(5),
  DAILY_SUMMARY_AT: z
    .string()
    .trim()
    .regex(/^([01]?\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24-hour, Asia/Taipei)')
    .default('21:00'),
  OWNER_NOTIFY: ownerNotify,
  REMIND_BEFORE_MINUTES_CARD: minutesOrZero(10),
  REMIND_BEFORE_MINUTES_CODE: minutesOrZero(30),
  // Members: points, tiers, wallet, in-store devices.
  POINTS_PER_TWD: decimalRatio('0.01'),
  POINTS_TWD_PER_POINT: decimalRatio('1').refine((r) => r.num > 0, 'must be more than 0'),
  POINTS_MAX_SHARE: decimalRatio('0.5').refine((r) => r.num <= r.den, 'must be between 0 and 1'),
  MEMBER_TIERS: z.string().default('普通:0:0,銀卡:1000:5,金卡:5000:10,鑽石:10000:15').transform(parseTiers),
  WALLET_TOPUP_AMOUNTS: z.string().default('500,1000,2000').transform(parseTopupAmounts),
  POS_API_SECRET: optionalString,
  ECPAY_LOGISTICS_MERCHANT_ID: optionalString,
  ECPAY_LOGISTICS_HASH_KEY: optionalString,
  ECPAY_LOGISTICS_HASH_IV: optionalString,
  ECPAY_LOGISTICS_SENDER_NAME: optionalString,
  ECPAY_LOGISTICS_SENDER_CELLPHONE: optionalString,
  ECPAY_LOGISTICS_API_BASE_URL: originUrl.default(ECPAY_LOGISTICS_STAGE_ORIGIN),
  ECPAY_LOGISTICS_SUB_TYPES: optionalString,
  SHIPPING_HOME_FEE: twd(100),
  SHIPPING_CVS_FEE: twd(60),
  FREE_SHIPPING_OVER: twd(1000),
});

export interface SinopacConfig {
  readonly shopNo: string;
  readonly hashA1: string;
  readonly hashA2: string;
  readonly hashB1: string;
  readonly hashB2: string;
  readonly keyId: string;
  /** Base including its path, ending in `/api/`; `Nonce` and `Order` are appended. */
  readonly apiBaseUrl: string;
}

export interface EcpayConfig {
  readonly merchantId: string;
  readonly hashKey: string;
  readonly hashIv: string;
  /** Origin of the payment host; `/Cashier/AioCheckOut/V5` etc. are appended. */
  readonly apiBaseUrl: string;
  /** True against ECPay's production host: `SimulatePaid=1` is then never accepted as money. */
  readonly isProduction: boolean;
  /**
   * CreditCheckCode from ECPay's dashboard (optional): lets a refund read the card trade's capture
   * state from CreditDetail/QueryTrade/V2 (spec §10.2). Without it the state is worked out from
   * the payment time and the daily 20:15 auto-capture.
   */
  readonly creditCheckCode?: string | null;
}

export interface EcpayLogisticsConfig {
  readonly merchantId: string;
  readonly hashKey: string;
  readonly hashIv: string;
  /** Origin of the logistics host; `/Express/Create` etc. are appended. */
  readonly apiBaseUrl: string;
  readonly isProduction: boolean;
  /** Store chains offered, all of the account's kind (C2C or B2C). */
  readonly subTypes: readonly CvsSubType[];
  /** SenderName of every shipment: 2–5 Chinese characters or 4–10 letters, no digits or symbols. */
  readonly senderName: string;
  /** SenderCellPhone, `09xxxxxxxx`. */
  readonly senderCellPhone: string;
}

export interface ShippingFees {
  /** Integer TWD for home delivery. */
  readonly homeFee: number;
  /** Integer TWD for convenience-store pickup. */
  readonly cvsFee: number;
  /** Orders whose goods total reaches this (integer TWD) ship free. */
  readonly freeOver: number;
}

export interface Config {
  readonly port: number;
  /** The worker serves GET /metrics on this port when set (the web serves it on PORT). */
  readonly workerMetricsPort: number | null;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly publicBaseUrl: string;
  readonly queuePrefix: string;
  readonly logLevel: string;
  readonly line: {
    readonly channelSecret: string;
    readonly channelAccessToken: string;
    readonly apiBaseUrl: string;
    readonly dataApiBaseUrl: string;
    /** Replies and pushes per second, all worker processes together (LINE allows 2,000 per endpoint). */
    readonly messagesPerSecond: number;
  };
  readonly holdMinutes: {
    readonly default: number;
    readonly card: number;
    readonly atm: number;
    readonly cvs: number;
  };
  readonly reconcileAfterMinutes: number;
  readonly reconcileEveryMinutes: number;
  /**
   * Store-pickup shipments with no status news for this long are asked about with
   * QueryLogisticsTradeInfo/V5, on a sweep this often (LOGISTICS_RECONCILE_*).
   */
  readonly logisticsReconcile: { readonly afterMinutes: number; readonly everyMinutes: number };
  readonly ownerLineUserIds: readonly string[];
  /** A product is low on stock at this many available units or fewer (owner push once per crossing). */
  readonly lowStockThreshold: number;
  /** When the owner's daily summary goes out, Asia/Taipei. */
  readonly dailySummaryAt: { readonly hour: number; readonly minute: number };
  /** The owner push kinds that are sent (OWNER_NOTIFY); the others are dropped. */
  readonly ownerNotify: readonly OwnerNotifyKind[];
  /** How long before an unpaid order's hold ends its shopper is reminded: card payments (and no method chosen yet), ATM/CVS codes. 0 = off. */
  readonly remindBeforeMinutes: { readonly card: number; readonly code: number };
  readonly sinopac: SinopacConfig | null;
  readonly ecpay: EcpayConfig | null;
  /** ECPay logistics (store pickup); null when not configured: store pickup is then not offered. */
  readonly ecpayLogistics: EcpayLogisticsConfig | null;
  readonly shipping: ShippingFees;
  readonly members: MembersConfig;
  /** HMAC key of POST /api/pos/journal; null: the endpoint is off. */
  readonly posApiSecret: string | null;
}

export interface MembersConfig {
  /** Points earned per NT$ paid (whole points, rounded down). */
  readonly pointsPerTwd: Ratio;
  /** NT$ value of one point when redeemed. */
  readonly twdPerPoint: Ratio;
  /** The largest share of an order that points may pay. */
  readonly maxPointsShare: Ratio;
  /** By ascending minPoints; the first starts at 0. */
  readonly tiers: readonly MemberTier[];
  /** Top-up amounts offered in chat (TWD). */
  readonly walletTopupAmounts: readonly number[];
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function group<K extends string>(
  env: Env,
  provider: string,
  keys: readonly K[],
): Record<K, string> | null {
  const present = keys.filter((k) => env[k] !== undefined && env[k]!.trim() !== '');
  if (present.length === 0) return null;
  const missing = keys.filter((k) => !present.includes(k));
  if (missing.length > 0) {
    throw new ConfigError(`${provider} is partly configured: missing ${missing.join(', ')}`);
  }
  return Object.fromEntries(keys.map((k) => [k, env[k]!.trim()])) as Record<K, string>;
}

const SINOPAC_KEYS = [
  'SINOPAC_SHOP_NO',
  'SINOPAC_HASH_A1',
  'SINOPAC_HASH_A2',
  'SINOPAC_HASH_B1',
  'SINOPAC_HASH_B2',
  'SINOPAC_KEY_ID',
] as const;
const ECPAY_KEYS = ['ECPAY_MERCHANT_ID', 'ECPAY_HASH_KEY', 'ECPAY_HASH_IV'] as const;
/** The sender details belong to the group: Express/Create cannot be sent without them (spec §6.1). */
const ECPAY_LOGISTICS_KEYS = [
  'ECPAY_LOGISTICS_MERCHANT_ID',
  'ECPAY_LOGISTICS_HASH_KEY',
  'ECPAY_LOGISTICS_HASH_IV',
  'ECPAY_LOGISTICS_SENDER_NAME',
  'ECPAY_LOGISTICS_SENDER_CELLPHONE',
] as const;

function logisticsConfig(env: Env, apiBaseUrl: string, subTypesSetting: string | undefined): EcpayLogisticsConfig | null {
  const lg = group(env, 'ECPay logistics', ECPAY_LOGISTICS_KEYS);
  if (!lg) return null;
  // The messages name the rule only: sender details are personal data and stay out of logs.
  const name = checkContactName(lg.ECPAY_LOGISTICS_SENDER_NAME);
  if (!name.ok) {
    throw new ConfigError('ECPAY_LOGISTICS_SENDER_NAME is invalid (2-5 Chinese characters or 4-10 letters, no digits, symbols or spaces)');
  }
  const phone = checkCellPhone(lg.ECPAY_LOGISTICS_SENDER_CELLPHONE);
  if (!phone.ok) throw new ConfigError('ECPAY_LOGISTICS_SENDER_CELLPHONE is invalid (09 and 8 digits)');
  let subTypes: readonly CvsSubType[] = DEFAULT_SUB_TYPES;
  if (subTypesSetting !== undefined) {
    const parsed = parseSubTypeList(subTypesSetting);
    if (!parsed.ok) throw new ConfigError(`ECPAY_LOGISTICS_SUB_TYPES is invalid (${parsed.reason})`);
    subTypes = parsed.value;
  }
  return {
    merchantId: lg.ECPAY_LOGISTICS_MERCHANT_ID,
    hashKey: lg.ECPAY_LOGISTICS_HASH_KEY,
    hashIv: lg.ECPAY_LOGISTICS_HASH_IV,
    apiBaseUrl,
    isProduction: apiBaseUrl === ECPAY_LOGISTICS_PRODUCTION_ORIGIN,
    subTypes,
    senderName: name.value,
    senderCellPhone: phone.value,
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o as object)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

const ownerIds = (list: string): string[] =>
  list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** Parses an env-like record into a frozen Config, or throws ConfigError naming what is wrong. */
export function parseConfig(env: Env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    const name = String(first.path[0] ?? 'configuration');
    const reason = env[name] === undefined || env[name] === '' ? 'is required' : `is invalid (${first.message})`;
    throw new ConfigError(`${name} ${reason}`);
  }
  const e = parsed.data;
  const sp = group(env, 'SinoPac', SINOPAC_KEYS);
  const ec = group(env, 'ECPay', ECPAY_KEYS);
  const publicBaseUrl = (e.PUBLIC_BASE_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  const cfg: Config = {
    port: e.PORT,
    workerMetricsPort: e.WORKER_METRICS_PORT ?? null,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    publicBaseUrl,
    queuePrefix: e.QUEUE_PREFIX,
    logLevel: e.LOG_LEVEL,
    line: {
      channelSecret: e.LINE_CHANNEL_SECRET,
      channelAccessToken: e.LINE_CHANNEL_ACCESS_TOKEN,
      apiBaseUrl: e.LINE_API_BASE_URL,
      dataApiBaseUrl: e.LINE_DATA_API_BASE_URL,
      messagesPerSecond: e.LINE_MESSAGES_PER_SECOND,
    },
    holdMinutes: {
      default: e.HOLD_MINUTES_DEFAULT,
      card: e.HOLD_MINUTES_CARD,
      atm: e.HOLD_MINUTES_ATM,
      cvs: e.HOLD_MINUTES_CVS,
    },
    reconcileAfterMinutes: e.RECONCILE_AFTER_MINUTES,
    reconcileEveryMinutes: e.RECONCILE_EVERY_MINUTES,
    logisticsReconcile: { afterMinutes: e.LOGISTICS_RECONCILE_AFTER_MINUTES, everyMinutes: e.LOGISTICS_RECONCILE_EVERY_MINUTES },
    ownerLineUserIds: ownerIds(e.SHOP_OWNER_LINE_USER_IDS),
    lowStockThreshold: e.LOW_STOCK_THRESHOLD,
    dailySummaryAt: { hour: Number(e.DAILY_SUMMARY_AT.split(':')[0]), minute: Number(e.DAILY_SUMMARY_AT.split(':')[1]) },
    ownerNotify: e.OWNER_NOTIFY,
    remindBeforeMinutes: { card: e.REMIND_BEFORE_MINUTES_CARD, code: e.REMIND_BEFORE_MINUTES_CODE },
    sinopac: sp
      ? {
          shopNo: sp.SINOPAC_SHOP_NO,
          hashA1: sp.SINOPAC_HASH_A1,
          hashA2: sp.SINOPAC_HASH_A2,
          hashB1: sp.SINOPAC_HASH_B1,
          hashB2: sp.SINOPAC_HASH_B2,
          keyId: sp.SINOPAC_KEY_ID,
          apiBaseUrl: e.SINOPAC_API_BASE_URL.endsWith('/') ? e.SINOPAC_API_BASE_URL : `${e.SINOPAC_API_BASE_URL}/`,
        }
      : null,
    ecpay: ec
      ? {
          merchantId: ec.ECPAY_MERCHANT_ID,
          hashKey: ec.ECPAY_HASH_KEY,
          hashIv: ec.ECPAY_HASH_IV,
          apiBaseUrl: e.ECPAY_API_BASE_URL,
          isProduction: e.ECPAY_API_BASE_URL === ECPAY_PRODUCTION_ORIGIN,
          creditCheckCode: e.ECPAY_CREDIT_CHECK_CODE ?? null,
        }
      : null,
    members: {
      pointsPerTwd: e.POINTS_PER_TWD,
      twdPerPoint: e.POINTS_TWD_PER_POINT,
      maxPointsShare: e.POINTS_MAX_SHARE,
      tiers: e.MEMBER_TIERS,
      walletTopupAmounts: e.WALLET_TOPUP_AMOUNTS,
    },
    posApiSecret: e.POS_API_SECRET ?? null,
    ecpayLogistics: logisticsConfig(env, e.ECPAY_LOGISTICS_API_BASE_URL, e.ECPAY_LOGISTICS_SUB_TYPES),
    shipping: { homeFee: e.SHIPPING_HOME_FEE, cvsFee: e.SHIPPING_CVS_FEE, freeOver: e.FREE_SHIPPING_OVER },
  };
  return deepFreeze(cfg);
}

/** Reads process.env once. A bad setting prints one line naming it and exits. */
export function loadConfigOrExit(): Config {
  try {
    return parseConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`config error: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/** Secrets never reach logs: a redacted view for startup logging. */
export function describeConfig(c: Config): Record<string, unknown> {
  return {
    port: c.port,
    publicBaseUrl: c.publicBaseUrl,
    queuePrefix: c.queuePrefix,
    lineApi: c.line.apiBaseUrl,
    holdMinutes: c.holdMinutes,
    owners: c.ownerLineUserIds.length,
    ownerNotify: c.ownerNotify,
    lowStockThreshold: c.lowStockThreshold,
    dailySummaryAt: c.dailySummaryAt,
    remindBeforeMinutes: c.remindBeforeMinutes,
    sinopac: c.sinopac ? { shopNo: c.sinopac.shopNo, apiBaseUrl: c.sinopac.apiBaseUrl } : 'off',
    ecpay: c.ecpay ? { merchantId: c.ecpay.merchantId, apiBaseUrl: c.ecpay.apiBaseUrl } : 'off',
    members: { tiers: c.members.tiers.map((t) => `${t.name}:${t.minPoints}:${t.discountPercent}`).join(','), topups: c.members.walletTopupAmounts },
    posJournal: c.posApiSecret ? 'on' : 'off',
    ecpayLogistics: c.ecpayLogistics
      ? { merchantId: c.ecpayLogistics.merchantId, apiBaseUrl: c.ecpayLogistics.apiBaseUrl, subTypes: c.ecpayLogistics.subTypes }
      : 'off',
    shipping: c.shipping,
  };
}

/** Database-only commands (migrate, seed, check:invariants) need nothing but DATABASE_URL. */
export function loadDatabaseUrlOrExit(): string {
  const r = z.object({ DATABASE_URL: z.string().min(1) }).safeParse(process.env);
  if (!r.success) {
    process.stderr.write('config error: DATABASE_URL is required\n');
    process.exit(1);
  }
  return r.data.DATABASE_URL;
}

export interface RichMenuSettings {
  readonly channelAccessToken: string;
  readonly apiBaseUrl: string;
  readonly dataApiBaseUrl: string;
  readonly ownerLineUserIds: readonly string[];
}

/** `npm run richmenu` needs only the access token, the two API origins and the owners. */
export function loadRichMenuSettingsOrExit(): RichMenuSettings {
  const r = envSchema
    .pick({ LINE_CHANNEL_ACCESS_TOKEN: true, LINE_API_BASE_URL: true, LINE_DATA_API_BASE_URL: true, SHOP_OWNER_LINE_USER_IDS: true })
    .safeParse(process.env);
  if (!r.success) {
    const name = String(r.error.issues[0]?.path[0] ?? 'configuration');
    process.stderr.write(`config error: ${name} ${process.env[name] ? 'is invalid' : 'is required'}\n`);
    process.exit(1);
  }
  return deepFreeze({
    channelAccessToken: r.data.LINE_CHANNEL_ACCESS_TOKEN,
    apiBaseUrl: r.data.LINE_API_BASE_URL,
    dataApiBaseUrl: r.data.LINE_DATA_API_BASE_URL,
    ownerLineUserIds: ownerIds(r.data.SHOP_OWNER_LINE_USER_IDS),
  });
}

/** `npm run dev`: everything has an embedded default; these three may be overridden. */
export function loadSandboxSettings(): { port: number; databaseUrl?: string; redisUrl: string } {
  const r = z
    .object({
      PORT: z.coerce.number().int().min(0).max(65535).default(3000),
      DATABASE_URL: optionalString,
      REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
    })
    .safeParse(process.env);
  if (!r.success) {
    process.stderr.write(`config error: ${String(r.error.issues[0]?.path[0])} is invalid\n`);
    process.exit(1);
  }
  return { port: r.data.PORT, databaseUrl: r.data.DATABASE_URL, redisUrl: r.data.REDIS_URL };
}
