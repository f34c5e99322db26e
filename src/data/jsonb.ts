/**
 * PostgreSQL's jsonb (and text) cannot hold U+0000, and jsonb refuses a lone UTF-16 surrogate
 * escape (`\ud800` without its pair). JSON from outside (LINE escapes whatever a shopper typed) may
 * carry both; such values are stored with U+FFFD in their place, the way a UTF-8 decoder shows
 * bytes it cannot read.
 */

// U+0000, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'g');

export const REPLACEMENT_CHARACTER = '\uFFFD';

export function storableString(s: string): string {
  return s.replace(UNSTORABLE_ALL, REPLACEMENT_CHARACTER);
}

/**
 * A deep copy of a parsed JSON value in which every string (keys too) can be stored in jsonb,
 * and whether anything had to be replaced. Values without such characters come back unchanged.
 */
export function storableJson<T>(value: T): { value: T; changed: boolean } {
  let changed = false;
  const fix = (s: string): string => {
    if (!UNSTORABLE.test(s)) return s;
    changed = true;
    return storableString(s);
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return fix(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      // defineProperty, not assignment: a "__proto__" key stays a key, as JSON.parse made it.
      for (const [k, x] of Object.entries(v)) Object.defineProperty(out, fix(k), { value: walk(x), enumerable: true, writable: true, configurable: true });
      return out;
    }
    return v;
  };
  const out = walk(value) as T;
  return { value: out, changed };
}
