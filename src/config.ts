import { z } from 'zod';

/**
 * The only module that reads process.env. Everything else receives the frozen Config.
 * parseConfig() takes any env-like record so tests and the sandbox can build configs without
 * touching the real environment.
 */

export const SINOPAC_SANDBOX_BASE_URL = 'https://apisbx.sinopac.com/funBIZ-Sbx/QPay.WebAPI/api/';
export const ECPAY_STAGE_ORIGIN = 'https://payment-stage.ecpay.com.tw';
export const ECPAY_PRODUCTION_ORIGIN = 'https://payment.ecpay.com.tw';

const minutes = (def: number) =>
  z.coerce.number().positive().finite().default(def);

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
  DATABASE_URL: z.string().min(1, 'is required'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  PUBLIC_BASE_URL: optionalString.pipe(z.string().url().optional()),
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('lineshop'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LINE_CHANNEL_SECRET: z.string().min(1, 'is required'),
  LINE_CHANNEL_ACCESS_TOKEN: z.string().min(1, 'is required'),
  LINE_API_BASE_URL: originUrl.default('https://api.line.me'),
  LINE_DATA_API_BASE_URL: originUrl.default('https://api-data.line.me'),
  HOLD_MINUTES_DEFAULT: minutes(30),
  HOLD_MINUTES_CARD: minutes(60),
  HOLD_MINUTES_ATM: minutes(4320),
  HOLD_MINUTES_CVS: minutes(10080),
  RECONCILE_AFTER_MINUTES: minutes(40),
  RECONCILE_EVERY_MINUTES: minutes(5),
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
  // Members: points, tiers, wallet, in-store devices.
  POINTS_PER_TWD: decimalRatio('0.01'),
  POINTS_TWD_PER_POINT: decimalRatio('1').refine((r) => r.num > 0, 'must be more than 0'),
  POINTS_MAX_SHARE: decimalRatio('0.5').refine((r) => r.num <= r.den, 'must be between 0 and 1'),
  MEMBER_TIERS: z.string().default('普通:0:0,銀卡:1000:5,金卡:5000:10,鑽石:10000:15').transform(parseTiers),
  WALLET_TOPUP_AMOUNTS: z.string().default('500,1000,2000').transform(parseTopupAmounts),
  POS_API_SECRET: optionalString,
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

export interface Config {
  readonly port: number;
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
  };
  readonly holdMinutes: {
    readonly default: number;
    readonly card: number;
    readonly atm: number;
    readonly cvs: number;
  };
  readonly reconcileAfterMinutes: number;
  readonly reconcileEveryMinutes: number;
  readonly ownerLineUserIds: readonly string[];
  readonly sinopac: SinopacConfig | null;
  readonly ecpay: EcpayConfig | null;
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

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o as object)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

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
    },
    holdMinutes: {
      default: e.HOLD_MINUTES_DEFAULT,
      card: e.HOLD_MINUTES_CARD,
      atm: e.HOLD_MINUTES_ATM,
      cvs: e.HOLD_MINUTES_CVS,
    },
    reconcileAfterMinutes: e.RECONCILE_AFTER_MINUTES,
    reconcileEveryMinutes: e.RECONCILE_EVERY_MINUTES,
    ownerLineUserIds: e.SHOP_OWNER_LINE_USER_IDS.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
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
    sinopac: c.sinopac ? { shopNo: c.sinopac.shopNo, apiBaseUrl: c.sinopac.apiBaseUrl } : 'off',
    ecpay: c.ecpay ? { merchantId: c.ecpay.merchantId, apiBaseUrl: c.ecpay.apiBaseUrl } : 'off',
    members: { tiers: c.members.tiers.map((t) => `${t.name}:${t.minPoints}:${t.discountPercent}`).join(','), topups: c.members.walletTopupAmounts },
    posJournal: c.posApiSecret ? 'on' : 'off',
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
