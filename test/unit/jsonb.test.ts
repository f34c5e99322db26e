import { storableJson, storableString } from '../../src/data/jsonb';

describe('storable JSON for jsonb', () => {
  test('U+0000 and lone surrogates become U+FFFD; valid surrogate pairs and everything else stay', () => {
    expect(storableString('a\u0000b')).toBe('a\uFFFDb');
    expect(storableString('\ud800')).toBe('\uFFFD');
    expect(storableString('\udc00x')).toBe('\uFFFDx');
    expect(storableString('\ud83d\ude00')).toBe('\u{1F600}');
    expect(storableString('\ude00\ud83d')).toBe('\uFFFD\uFFFD');
    expect(storableString('\ud83d\ud83d\ude00')).toBe('\uFFFD\u{1F600}');
    expect(storableString('\u0001\u001f 商品 \\u0000')).toBe('\u0001\u001f 商品 \\u0000');
  });

  test('keys and nested values are fixed, "changed" says whether anything was, and a __proto__ key stays a key', () => {
    const parsed = JSON.parse('{"a\\u0000":["x\\ud800",{"n":1,"t":true,"z":null}],"__proto__":{"p":"\\udfff"}}');
    const { value, changed } = storableJson(parsed);
    expect(changed).toBe(true);
    expect(JSON.stringify(value)).toBe('{"a\uFFFD":["x\uFFFD",{"n":1,"t":true,"z":null}],"__proto__":{"p":"\uFFFD"}}');
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    const clean = { a: ['b', 1, { c: 'd' }] };
    expect(storableJson(clean)).toEqual({ value: clean, changed: false });
  });
});
