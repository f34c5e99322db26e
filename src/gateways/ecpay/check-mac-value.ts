import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * ECPay AIO CheckMacValue (specs/ecpay-aio.md §3).
 *
 * The signing string is built by hand (never JSON.stringify), sorted lower-case ordinal, wrapped in
 * HashKey/HashIV, encoded with .NET HttpUtility.UrlEncode semantics, lower-cased, hashed, upper-cased.
 */

export type CheckMacAlgorithm = 'sha256' | 'md5';

/**
 * .NET `HttpUtility.UrlEncode`: UTF-8 bytes, `A-Z a-z 0-9 - _ . ! * ( )` kept, space → `+`,
 * everything else (including `~` and `'`) percent-encoded. encodeURIComponent already keeps exactly
 * that safe set plus `~` and `'`, so only those two and the space need fixing afterwards.
 * Hex digits come out upper-case here; the caller lower-cases the whole string anyway (step 5).
 */
export function ecpayUrlEncode(s: string): string {
  return encodeURIComponent(s)
    .replace(/%20/g, '+')
    .replace(/'/g, '%27')
    .replace(/~/g, '%7E');
}

/** Lower-case ordinal comparison (PHP strcasecmp); deliberately not localeCompare. */
function compareNames(a: string, b: string): number {
  const la = a.toLowerCase();
  const lb = b.toLowerCase();
  if (la < lb) return -1;
  if (la > lb) return 1;
  // Names that differ only in case: keep a deterministic order (never happens in real messages).
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The string that is hashed (after encoding and lower-casing). Exported for tests and debugging. */
export function checkMacSource(params: Record<string, string>, hashKey: string, hashIv: string): string {
  const names = Object.keys(params)
    .filter((n) => n !== 'CheckMacValue')
    .sort(compareNames);
  const body = names.map((n) => `${n}=${params[n] ?? ''}`).join('&');
  const raw = `HashKey=${hashKey}${body === '' ? '' : `&${body}`}&HashIV=${hashIv}`;
  return ecpayUrlEncode(raw).toLowerCase();
}

/** Computes the upper-case hex CheckMacValue over every field except `CheckMacValue` (empty values included). */
export function checkMacValue(
  params: Record<string, string>,
  hashKey: string,
  hashIv: string,
  algo: CheckMacAlgorithm = 'sha256',
): string {
  return createHash(algo).update(checkMacSource(params, hashKey, hashIv), 'utf8').digest('hex').toUpperCase();
}

export interface VerifyOptions {
  /**
   * Algorithms a MAC may use. Default both, chosen by length as ECPay's own SDK does (64 hex →
   * SHA-256, 32 hex → MD5). AIO V5 messages are SHA-256 only (EncryptType=1, spec §3.1 step 6):
   * pass ['sha256'] for them, so a 32-character MAC is refused instead of checked as MD5.
   */
  algorithms?: readonly CheckMacAlgorithm[];
}

const MAC_LENGTH: Record<CheckMacAlgorithm, number> = { sha256: 64, md5: 32 };

/**
 * Verifies `params.CheckMacValue` against the other fields: case-insensitive, constant-time.
 * The algorithm follows the length among the allowed ones (see VerifyOptions).
 */
export function verifyCheckMacValue(
  params: Record<string, string>,
  hashKey: string,
  hashIv: string,
  opts: VerifyOptions = {},
): boolean {
  const received = params.CheckMacValue;
  if (typeof received !== 'string') return false;
  const allowed = opts.algorithms ?? (['sha256', 'md5'] as const);
  const algo = allowed.find((a) => MAC_LENGTH[a] === received.length);
  if (algo === undefined) return false;
  if (!/^[0-9A-Fa-f]+$/.test(received)) return false;
  const expected = Buffer.from(checkMacValue(params, hashKey, hashIv, algo), 'ascii');
  const actual = Buffer.from(received.toUpperCase(), 'ascii');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
