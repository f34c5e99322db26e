import { parseWhole, validateProduct, validateStock } from '../../src/domain/catalog-admin';
import { parseRefundAmount, parseShipment } from '../../src/domain/order-admin';
import { sniffImage } from '../../src/domain/photos';
import { csvCell, csvLine } from '../../src/web/admin/csv';
import { html } from '../../src/web/admin/html';

describe('the back office templating escapes everything it did not make', () => {
  test('interpolated text, attributes and arrays', () => {
    const evil = `"><script>alert('x')</script>&`;
    const out = html`<p title="${evil}">${evil}</p><ul>${['<b>', html`<li>${'<i>'}</li>`]}</ul>${null}${false}${undefined}${0}`.value;
    expect(out).toBe('<p title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</p><ul>&lt;b&gt;<li>&lt;i&gt;</li></ul>0');
  });
});

describe('what the owner types', () => {
  test('whole numbers: full-width digits and thousands separators; nothing else', () => {
    expect(parseWhole('１,２００')).toBe(1200);
    expect(parseWhole(' 980 ')).toBe(980);
    for (const bad of ['12.5', '-3', '1e3', '', 'NT$5', '0x10']) expect(parseWhole(bad)).toBeNull();
  });

  test('a product: SKU upper-cased, names kept as typed (full-width brackets too), price in range', () => {
    const v = validateProduct({ sku: ' tea-9 ', name: '  凍頂烏龍茶（300g）  ', description: ' 好喝\r\n ', price: '１２００', categoryId: '2', active: true });
    expect(v).toEqual({ ok: true, values: { sku: 'TEA-9', name: '凍頂烏龍茶（300g）', description: '好喝', price: 1200, category_id: 2, active: true } });
    const bad = validateProduct({ sku: 'tea 9', name: '', description: 'x'.repeat(2001), price: '0', categoryId: '', active: false });
    expect(bad).toEqual({ ok: false, errors: { sku: 'invalid', name: 'required', description: 'too-long', price: 'out-of-range', categoryId: 'required' } });
    expect(validateProduct({ sku: 'A', name: 'n', description: '', price: '1000001', categoryId: '1', active: true })).toMatchObject({ ok: false, errors: { price: 'out-of-range' } });
  });

  test('stock and its reason', () => {
    expect(validateStock('２０', ' 進貨 ')).toEqual({ ok: true, qty: 20, reason: '進貨' });
    expect(validateStock('-1', '')).toEqual({ ok: false, errors: { stock: 'invalid', reason: 'required' } });
    expect(validateStock('5', '', false)).toEqual({ ok: true, qty: 5, reason: '' });
  });

  test('shipment and refund amount', () => {
    expect(parseShipment(' 黑貓宅急便 ', ' tw-１２３ ')).toEqual({ ok: true, carrier: '黑貓宅急便', tracking: 'TW-123' });
    expect(parseShipment('', '')).toEqual({ ok: true, carrier: null, tracking: null });
    expect(parseShipment('', 'TW 12 34')).toEqual({ ok: true, carrier: null, tracking: 'TW1234' });
    expect(parseShipment('', 'TW<1>')).toEqual({ ok: false, error: 'invalid' });
    expect(parseShipment('', 'X'.repeat(61))).toEqual({ ok: false, error: 'too-long' });
    expect(parseRefundAmount('')).toEqual({ ok: true, amount: null });
    expect(parseRefundAmount('NT$1,200')).toEqual({ ok: true, amount: 1200 });
    expect(parseRefundAmount('abc')).toEqual({ ok: false });
  });
});

describe('CSV cells', () => {
  test('quoting, formula guard, numbers as they are', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('line1\nline2')).toBe('"line1\nline2"');
    expect(csvCell('=1+1')).toBe("'=1+1");
    expect(csvCell('+886912345678')).toBe("'+886912345678");
    expect(csvCell('-5')).toBe("'-5");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell(-100)).toBe('-100');
    expect(csvCell(null)).toBe('');
    expect(csvLine(['訂單', 1, '=x,y'])).toBe(`訂單,1,"'=x,y"\r\n`);
  });
});

describe('uploads are judged by their bytes', () => {
  test('magic numbers', () => {
    expect(sniffImage(Buffer.from([0xff, 0xd8, 0xff, 0xe1, 0, 0]))).toBe('jpeg');
    expect(sniffImage(Buffer.from('89504e470d0a1a0a0000', 'hex'))).toBe('png');
    expect(sniffImage(Buffer.from('RIFF\0\0\0\0WEBPVP8 ', 'latin1'))).toBe('webp');
    expect(sniffImage(Buffer.from('\0\0\0\x18ftypheic\0\0\0\0', 'latin1'))).toBe('heif');
    expect(sniffImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBe('other');
    expect(sniffImage(Buffer.from('GIF89a'))).toBe('gif');
  });
});
