import { checkMacValue, verifyCheckMacValue } from '../ecpay/check-mac-value';

/**
 * CheckMacValue of the logistics APIs: the AIO algorithm with MD5 (specs/ecpay-logistics.md §3):
 * same field selection, sorting, HashKey/HashIV wrapping and .NET URL-encoding, 32 hex digits.
 * Logistics messages carry no EncryptType, and a 64-digit (SHA-256) MAC is refused.
 */

const MD5_ONLY = { algorithms: ['md5'] } as const;

export interface LogisticsKeys {
  hashKey: string;
  hashIv: string;
}

/** Upper-case MD5 CheckMacValue over every field except `CheckMacValue` (empty values included). */
export function logisticsMac(params: Record<string, string>, keys: LogisticsKeys): string {
  return checkMacValue(params, keys.hashKey, keys.hashIv, 'md5');
}

/** Returns the fields with their CheckMacValue added. */
export function signLogistics(params: Record<string, string>, keys: LogisticsKeys): Record<string, string> {
  const { CheckMacValue: _ignored, ...rest } = params;
  return { ...rest, CheckMacValue: logisticsMac(rest, keys) };
}

/** Verifies `params.CheckMacValue` (MD5 only): case-insensitive, constant-time. */
export function verifyLogisticsMac(params: Record<string, string>, keys: LogisticsKeys): boolean {
  return verifyCheckMacValue(params, keys.hashKey, keys.hashIv, MD5_ONLY);
}

/**
 * Splits a server-to-server answer the way ECPay writes it (§3): `&` between fields, the first
 * `=` between name and value, values raw — no percent-decoding and no `+` → space, since the
 * values are plain text (Chinese and spaces unescaped, as in the real answers M2/M3).
 * Null when a part has no `=` or a name repeats.
 */
export function parseRawFields(body: string): Record<string, string> | null {
  const text = body.replace(/[\r\n]+$/, '');
  if (text === '') return null;
  const out: Record<string, string> = {};
  for (const part of text.split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return null;
    const name = part.slice(0, eq);
    if (Object.prototype.hasOwnProperty.call(out, name)) return null;
    out[name] = part.slice(eq + 1);
  }
  return out;
}

/** Percent-decodes values (a literal `+` stays a plus); null when a value is not valid UTF-8 percent-encoding. */
function decodeValues(fields: Record<string, string>): Record<string, string> | null {
  const out: Record<string, string> = {};
  try {
    for (const [k, v] of Object.entries(fields)) out[k] = decodeURIComponent(v);
  } catch {
    return null;
  }
  return out;
}

/**
 * Parses and verifies a signed raw answer (the part after `1|` of Express/Create, the whole of
 * Query's answer). The spec has the values raw; should ECPay ever percent-encode them, the
 * decoded reading is verified too — either reading must carry a valid MAC, so nothing unsigned
 * gets through. Null when neither verifies (or the body is not fields at all).
 */
export function parseSignedAnswer(body: string, keys: LogisticsKeys): Record<string, string> | null {
  const raw = parseRawFields(body);
  if (!raw || raw.CheckMacValue === undefined) return null;
  if (verifyLogisticsMac(raw, keys)) return raw;
  if (!body.includes('%')) return null;
  const decoded = decodeValues(raw);
  return decoded && verifyLogisticsMac(decoded, keys) ? decoded : null;
}
