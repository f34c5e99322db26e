import { DEMO_PRODUCTS } from '../../src/data/seed';
import { LABEL, MISMATCH, PAGE, T } from '../../src/texts';

/**
 * Examples people read ("cart TEA-001 2", "庫存 TEA-001 20") must work when typed into the demo shop:
 * every SKU they name is in the demo catalog, every product number is one the seed creates.
 */
function allTexts(): string[] {
  const out: string[] = [];
  for (const group of [T, LABEL, MISMATCH, PAGE]) {
    for (const v of Object.values(group)) {
      if (typeof v === 'string') out.push(v);
      // A function's source holds its template text, examples included.
      else if (typeof v === 'function') out.push(v.toString());
    }
  }
  return out;
}

// `cart <ref> <qty>` and `庫存 <SKU> <qty>` with a concrete ref (placeholders are in <>).
const EXAMPLE = /(?:cart|購物車|庫存)\s+([^\s<>、，。（）]+)\s+[+-]?\d+/g;

describe('examples in the texts', () => {
  const examples = allTexts().flatMap((t) => [...t.matchAll(EXAMPLE)].map((m) => m[1]!));

  test('the texts do contain examples (so the next check checks something)', () => {
    expect(examples.length).toBeGreaterThanOrEqual(4);
  });

  test('every SKU an example names is in the demo catalog, every product number is one the seed creates', () => {
    const skus = new Set(DEMO_PRODUCTS.map((p) => p.sku));
    for (const ref of examples) {
      if (/^\d+$/.test(ref)) expect(Number(ref)).toBeLessThanOrEqual(DEMO_PRODUCTS.length);
      else expect({ ref, known: skus.has(ref.toUpperCase()) }).toEqual({ ref, known: true });
    }
  });
});
