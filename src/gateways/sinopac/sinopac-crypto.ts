/**
 * SinoPac QPay (funBIZ) message crypto, per specs/sinopac-qpay.md §3.
 *
 * Pure functions, no I/O. Used by the client (merchant side) and by the local sandbox (bank side),
 * so both directions of the protocol share one implementation that is pinned by the spec's vectors.
 *
 * Errors thrown here never contain key material: callers may log their messages.
 */
import { createCipheriv, createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';

const HASH_ID_RE = /^[0-9A-Fa-f]{32}$/;

/** Normalises one of A1/A2/B1/B2 (strip '-', first 16 hex chars) into its 8 bytes. */
function hashPartBytes(value: string, name: string): Buffer {
  const hex = String(value).replace(/-/g, '').trim().slice(0, 16);
  if (!/^[0-9A-Fa-f]{16}$/.test(hex)) {
    // Never echo the value: it is a secret.
    throw new Error(`SinoPac hash value ${name} is not at least 16 hex characters`);
  }
  return Buffer.from(hex, 'hex');
}

function xorHex(a: Buffer, b: Buffer): string {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  // Buffer hex keeps leading zeros, so each half is always 16 characters (spec §3.1 step 3).
  return out.toString('hex').toUpperCase();
}

/** HashID = hexU(A1 ⊕ A2) + hexU(B1 ⊕ B2): 32 upper-case hex characters (spec §3.1). */
export function hashId(a1: string, a2: string, b1: string, b2: string): string {
  const x = xorHex(hashPartBytes(a1, 'A1'), hashPartBytes(a2, 'A2'));
  const y = xorHex(hashPartBytes(b1, 'B1'), hashPartBytes(b2, 'B2'));
  return x + y;
}

/** IV string: the last 16 characters of hexU(SHA-256(utf8(nonce))) (spec §3.2). Used as ASCII. */
export function ivFromNonce(nonce: string): string {
  if (typeof nonce !== 'string' || nonce === '') throw new Error('SinoPac nonce is empty');
  return createHash('sha256').update(nonce, 'utf8').digest('hex').toUpperCase().slice(-16);
}

function keyBytes(hashIdValue: string): Buffer {
  // The key is the 32 hex *characters* as ASCII (AES-256), not the 16 decoded bytes (spec §3.3).
  if (typeof hashIdValue !== 'string' || !HASH_ID_RE.test(hashIdValue)) {
    throw new Error('SinoPac HashID must be 32 hex characters');
  }
  return Buffer.from(hashIdValue, 'ascii');
}

/** AES-256-CBC / PKCS#7 of the UTF-8 JSON text → upper-case hex (spec §3.3). */
export function encryptMessage(plainJson: string, hashIdValue: string, nonce: string): string {
  const cipher = createCipheriv('aes-256-cbc', keyBytes(hashIdValue), Buffer.from(ivFromNonce(nonce), 'ascii'));
  return Buffer.concat([cipher.update(plainJson, 'utf8'), cipher.final()]).toString('hex').toUpperCase();
}

/**
 * Inverse of encryptMessage. Accepts either hex case. Throws on malformed hex or on a padding error
 * (which, with CBC, almost always means a wrong key or IV).
 */
export function decryptMessage(hex: string, hashIdValue: string, nonce: string): string {
  if (typeof hex !== 'string' || hex.length === 0 || hex.length % 32 !== 0 || !/^[0-9A-Fa-f]+$/.test(hex)) {
    throw new Error('SinoPac message is not hex of whole AES blocks');
  }
  const decipher = createDecipheriv('aes-256-cbc', keyBytes(hashIdValue), Buffer.from(ivFromNonce(nonce), 'ascii'));
  try {
    return Buffer.concat([decipher.update(Buffer.from(hex, 'hex')), decipher.final()]).toString('utf8');
  } catch {
    throw new Error('SinoPac message could not be decrypted (bad padding: wrong key or nonce?)');
  }
}

function upperKey(s: string): string {
  return s.toUpperCase();
}

/**
 * The signed part of a message (spec §3.4 steps 1–5): top-level scalar properties only, without
 * null/undefined and empty or whitespace-only strings, keys sorted ascending case-insensitively,
 * `Key=Value` joined by `&`, values verbatim (no URL-encoding). Numeric 0 is kept (bank C# sample).
 */
export function signingString(obj: Record<string, unknown>): string {
  const pairs: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(obj)) {
    if (value === null || value === undefined) continue;
    let text: string;
    if (typeof value === 'string') {
      if (value.trim() === '') continue;
      text = value;
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) continue;
      text = String(value);
    } else if (typeof value === 'boolean' || typeof value === 'bigint') {
      text = String(value);
    } else {
      // Objects and arrays (ATMParam, CardParam, TSResultContent, OrderList, …) are not signed.
      continue;
    }
    pairs.push([key, text]);
  }
  pairs.sort(([a], [b]) => {
    const ua = upperKey(a);
    const ub = upperKey(b);
    if (ua < ub) return -1;
    if (ua > ub) return 1;
    // Keys that differ only in case: keep a deterministic order.
    return a < b ? -1 : a > b ? 1 : 0;
  });
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** Sign = hexU(SHA-256(utf8(signingString + nonce + HashID))) (spec §3.4 steps 6–7). */
export function sign(obj: Record<string, unknown>, nonce: string, hashIdValue: string): string {
  return createHash('sha256')
    .update(signingString(obj) + nonce + hashIdValue, 'utf8')
    .digest('hex')
    .toUpperCase();
}

/** Constant-time comparison of a received Sign (either hex case) with the recomputed one. */
export function verifySign(
  obj: Record<string, unknown>,
  nonce: string,
  hashIdValue: string,
  receivedSign: string,
): boolean {
  if (typeof receivedSign !== 'string') return false;
  const expected = Buffer.from(sign(obj, nonce, hashIdValue), 'ascii');
  const received = Buffer.from(receivedSign.toUpperCase(), 'utf8');
  if (received.length !== expected.length) return false;
  return timingSafeEqual(expected, received);
}
