import crypto from 'node:crypto';
import sharp from 'sharp';
import { checkInvariants } from '../../src/domain/invariants';
import { setAdjustment } from '../../src/domain/order-adjustments';
import { ADMIN } from '../../src/texts';
import { AdminClient, loggedIn, newKey } from '../helpers/admin';
import { heicHeader, phonePhoto, pngBomb, smallPng } from '../helpers/images';
import { placeOrder } from '../helpers/orders';
import { count, newUserId, settled, startShop, TestShop } from '../helpers/shop';
import { stockOf } from '../helpers/stock';

const owner = newUserId();
let shop: TestShop;
let admin: AdminClient;

beforeAll(async () => {
  shop = await startShop({ label: 'bo_catalog', owners: [owner] });
  admin = await loggedIn(shop, owner);
});
afterAll(async () => {
  await shop?.close();
});

const categoryId = async (slug = 'tea') => String((await shop.c.db('categories').where({ slug }).first('id')).id);
const productFields = async (over: Record<string, string> = {}) => ({
  name: '凍頂烏龍茶（300g）', sku: 'tea-100', price: '１,２００', categoryId: await categoryId(), description: '南投鹿谷，焙火香。', active: '1', stock: '12', ...over,
});

/** The carousel the shopper gets for 商品: each bubble's hero image URL and name. */
async function carousel(user: string): Promise<Array<{ url: string; name: string }>> {
  const out: Array<{ url: string; name: string }> = [];
  for (let page = 1; page <= 3; page++) {
    await settled(shop, page === 1 ? await shop.say(user, '商品') : await shop.tap(user, `action=menu&page=${page}`));
    const last = shop.line.deliveredTo(user).at(-1)!;
    const msg = last.messages[0] as { contents: { contents: Array<{ hero?: { url: string }; body: { contents: Array<{ text: string }> } }> } };
    const cards = msg.contents.contents.filter((b) => b.hero);
    out.push(...cards.map((b) => ({ url: b.hero!.url, name: b.body.contents[0]!.text })));
    if (cards.length === msg.contents.contents.length) break; // no "more" bubble: the last page
  }
  return out;
}

describe('products in the back office', () => {
  let productId: number;
  let photoHash: string;

  it('creates a product with a phone photo: upright, ≤ 1024 px, sRGB JPEG without metadata, served with a content hash and a long cache; the carousel shows it', async () => {
    await admin.get('/admin/products/new');
    const photo = await phonePhoto();
    const key = newKey();
    const r = await admin.postMultipart('/admin/products', await productFields(), { name: 'IMG_0001.JPG', type: 'image/jpeg', data: photo }, { key });
    expect(r.status).toBe(303);
    const location = r.headers.get('location')!;
    expect(location).toMatch(/^\/admin\/products\/\d+\?done=/);
    productId = Number(/products\/(\d+)/.exec(location)![1]);
    const page = await admin.get(location);
    expect(page.text).toContain(ADMIN.productForm.created('凍頂烏龍茶（300g）'));

    const p = await shop.c.db('products as p').join('product_images as i', 'i.id', 'p.image_id').where('p.id', productId).first('p.*', 'i.sha256', 'i.width', 'i.height', 'i.byte_size');
    expect(p).toMatchObject({ sku: 'TEA-100', price: 1200, active: true, image_url: null, width: 683, height: 1024 });
    expect(p.byte_size).toBeLessThanOrEqual(1_000_000);
    expect(await stockOf(shop.c.db, productId)).toEqual({ stock_on_hand: 12, stock_reserved: 0 });
    photoHash = p.sha256;

    const media = await fetch(`${shop.url}/media/products/${photoHash}.jpg`);
    expect(media.status).toBe(200);
    expect(media.headers.get('content-type')).toBe('image/jpeg');
    expect(media.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const bytes = Buffer.from(await media.arrayBuffer());
    expect(crypto.createHash('sha256').update(bytes).digest('hex')).toBe(photoHash);
    const meta = await sharp(bytes).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 683, height: 1024, space: 'srgb' });
    expect(meta.exif).toBeUndefined();
    expect(meta.orientation).toBeUndefined();
    expect(meta.icc).toBeUndefined();
    expect(bytes.length).toBeLessThanOrEqual(1_000_000);

    const shopper = newUserId();
    const cards = await carousel(shopper);
    expect(cards).toContainEqual({ url: `${shop.url}/media/products/${photoHash}.jpg`, name: '凍頂烏龍茶（300g）' });

    const audits = await shop.c.db('audit_log').where({ target_type: 'product', target_id: String(productId) }).orderBy('id');
    expect(audits.map((a) => [a.action, a.source, a.reason])).toEqual([
      ['product.create', 'web', null],
      ['stock.set', 'web', ADMIN.productForm.initialStockReason],
    ]);
    expect(audits[0].origin).toMatchObject({ ip: expect.any(String), userAgent: expect.any(String) });

    // The same form submitted again (a double tap): the same answer, nothing new.
    const again = await admin.postMultipart('/admin/products', await productFields(), { name: 'IMG_0001.JPG', type: 'image/jpeg', data: photo }, { key });
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe(location);
    expect(await count(shop.c, 'products', { sku: 'TEA-100' })).toBe(1);
  });

  it('refuses a duplicate SKU (any case), a bad price and a missing name, keeping what was typed', async () => {
    const products = await count(shop.c, 'products');
    const r = await admin.postMultipart('/admin/products', await productFields({ sku: 'Tea-100', price: '12.5', name: ' ' }));
    expect(r.status).toBe(422);
    expect(r.text).toContain(ADMIN.fieldErrorFor.price!.invalid!);
    expect(r.text).toContain(ADMIN.fieldError.required!);
    const dup = await admin.postMultipart('/admin/products', await productFields({ sku: 'Tea-100' }));
    expect(dup.status).toBe(422);
    expect(dup.text).toContain(ADMIN.fieldErrorFor.sku!.taken!);
    expect(dup.text).toContain('value="Tea-100"');
    expect(await count(shop.c, 'products')).toBe(products);
  });

  it('edits a product: only what changed is in the audit row; an inactive product leaves the carousel', async () => {
    await admin.get(`/admin/products/${productId}`);
    const r = await admin.postMultipart(`/admin/products/${productId}`, { ...(await productFields()), price: '1180', active: '' });
    expect(r.status).toBe(303);
    const row = await shop.c.db('products').where({ id: productId }).first();
    expect(row).toMatchObject({ price: 1180, active: false, image_id: expect.any(Number) });
    const [a] = await shop.c.db('audit_log').where({ action: 'product.update', target_id: String(productId) });
    expect(a.before).toEqual({ price: 1200, active: true });
    expect(a.after).toEqual({ price: 1180, active: false });
    expect((await carousel(newUserId())).map((c) => c.name)).not.toContain('凍頂烏龍茶（300g）');

    // A new photo replaces the old one; the old URL keeps serving its own bytes.
    const png = await smallPng();
    const r2 = await admin.postMultipart(`/admin/products/${productId}`, { ...(await productFields()), active: '1' }, { name: 'x.png', type: 'image/png', data: png });
    expect(r2.status).toBe(303);
    const now = await shop.c.db('products as p').join('product_images as i', 'i.id', 'p.image_id').where('p.id', productId).first('i.sha256', 'i.width', 'i.height');
    expect(now.sha256).not.toBe(photoHash);
    expect(now).toMatchObject({ width: 640, height: 480 });
    expect((await fetch(`${shop.url}/media/products/${photoHash}.jpg`)).status).toBe(200);
    expect(await shop.c.db('audit_log').where({ action: 'product.photo', target_id: String(productId) })).toHaveLength(1);
  });

  it('a product without a photo gets our placeholder in the carousel', async () => {
    const r = await admin.postMultipart('/admin/products', await productFields({ sku: 'NOPIC-1', name: '無圖商品', stock: '3' }));
    expect(r.status).toBe(303);
    const cards = await carousel(newUserId());
    const card = cards.find((c) => c.name === '無圖商品')!;
    expect(card.url).toBe(`${shop.url}/media/placeholder/v1.jpg`);
    const img = await fetch(card.url);
    expect(img.headers.get('content-type')).toBe('image/jpeg');
    const meta = await sharp(Buffer.from(await img.arrayBuffer())).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 1024, height: 666 });
  });

  it('sets stock from the page with a reason, never below what unpaid orders hold', async () => {
    const shopper = newUserId();
    await placeOrder(shop, shopper, 'GDS-002', 2);
    const id = (await shop.c.db('products').where({ sku: 'GDS-002' }).first('id')).id;
    await admin.get(`/admin/products/${id}`);
    const before = await stockOf(shop.c.db, id);
    const low = await admin.post(`/admin/products/${id}/stock`, { stock: '1', reason: '盤點' });
    expect(low.status).toBe(303);
    expect((await admin.get(low.headers.get('location')!)).text).toContain(ADMIN.productForm.stockBelowReserved(2));
    expect(await stockOf(shop.c.db, id)).toEqual(before);

    const noReason = await admin.post(`/admin/products/${id}/stock`, { stock: '5', reason: '' });
    expect(noReason.status).toBe(422);
    expect(noReason.text).toContain(ADMIN.fieldErrorFor.reason!.required!);
    expect(await stockOf(shop.c.db, id)).toEqual(before);

    const ok = await admin.post(`/admin/products/${id}/stock`, { stock: '５', reason: '進貨' });
    expect(ok.status).toBe(303);
    expect((await admin.get(ok.headers.get('location')!)).text).toContain(ADMIN.productForm.stockSet(5, 3));
    expect(await stockOf(shop.c.db, id)).toEqual({ stock_on_hand: 5, stock_reserved: 2 });
    const [a] = await shop.c.db('audit_log').where({ action: 'stock.set', target_id: String(id) }).orderBy('id', 'desc').limit(1);
    expect(a).toMatchObject({ source: 'web', reason: '進貨', before: { onHand: before.stock_on_hand, reserved: 2 }, after: { onHand: 5, reserved: 2 } });
  });

  it('lists products with search, category filter and sort', async () => {
    const byName = await admin.get('/admin/products?q=' + encodeURIComponent('烏龍'));
    expect(byName.text).toContain('阿里山高山烏龍茶');
    expect(byName.text).toContain('凍頂烏龍茶');
    expect(byName.text).not.toContain('鳳梨酥');
    const snacks = await admin.get(`/admin/products?category=${await categoryId('snacks')}&sort=price-desc`);
    const names = [...snacks.text.matchAll(/<a href="\/admin\/products\/\d+">([^<]+)<\/a>/g)].map((m) => m[1]);
    expect(names).toEqual(['鳳梨酥（12 入）', '牛軋糖綜合包', '手工蛋捲（原味）']);
  });
});

describe('categories', () => {
  it('creates, renames and reorders categories, each audited; a duplicate name is refused', async () => {
    await admin.get('/admin/categories');
    expect((await admin.post('/admin/categories', { name: '  禮盒  ' })).status).toBe(303);
    const dup = await admin.post('/admin/categories', { name: '茶飲' });
    expect(dup.status).toBe(422);
    expect(dup.text).toContain(ADMIN.fieldErrorFor.name!.taken!);
    const gift = await shop.c.db('categories').where({ name: '禮盒' }).first();
    expect(gift.sort_order).toBe(4);
    expect((await admin.post(`/admin/categories/${gift.id}`, { name: '節慶禮盒' })).status).toBe(303);
    expect((await admin.post(`/admin/categories/${gift.id}/move`, { direction: 'up' })).status).toBe(303);
    expect((await admin.post(`/admin/categories/${gift.id}/move`, { direction: 'up' })).status).toBe(303);
    const order = await shop.c.db('categories').orderBy('sort_order').pluck('name');
    expect(order).toEqual(['茶飲', '節慶禮盒', '點心', '選物']);
    const actions = await shop.c.db('audit_log').where({ target_type: 'category' }).orderBy('id').pluck('action');
    expect(actions).toEqual(['category.create', 'category.rename', 'category.reorder', 'category.reorder']);
    // The chat's catalog follows the owner's category order.
    const page = await admin.get('/admin/products');
    expect(page.text.indexOf('茶飲')).toBeLessThan(page.text.indexOf('點心'));
  });
});

describe('uploads that are refused', () => {
  const tries: Array<[string, () => Promise<{ name: string; type: string; data: Buffer }>, string]> = [
    ['a 12 MB upload', async () => ({ name: 'big.jpg', type: 'image/jpeg', data: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), crypto.randomBytes(12 * 1024 * 1024)]) }), ADMIN.photoRefused['too-large']!],
    ['a text file renamed .jpg', async () => ({ name: 'notes.jpg', type: 'image/jpeg', data: Buffer.from('這不是圖片，只是一段文字。\n'.repeat(200)) }), ADMIN.photoRefused['not-image']!],
    ['a decompression-bomb PNG (100 megapixels in a few KB)', async () => ({ name: 'bomb.png', type: 'image/png', data: pngBomb() }), ADMIN.photoRefused['too-many-pixels']!],
    ['a HEIC photo the image library cannot decode', async () => ({ name: 'IMG_0002.HEIC', type: 'image/heic', data: heicHeader() }), ADMIN.photoRefused.heic!],
  ];

  it.each(tries)('%s is refused with a clear message; nothing is stored and the process stays up', async (_what, make, message) => {
    const file = await make();
    const images = await count(shop.c, 'product_images');
    const products = await count(shop.c, 'products');
    const audits = await count(shop.c, 'audit_log');
    const r = await admin.postMultipart('/admin/products', await productFields({ sku: `BAD-${crypto.randomBytes(3).toString('hex')}` }), file);
    expect(r.status).toBe(422);
    expect(r.text).toContain(message);
    const edit = await admin.postMultipart('/admin/products/1', { ...(await productFields()), sku: 'TEA-001', name: '阿里山高山烏龍茶（150g）', price: '680' }, file);
    expect(edit.status).toBe(422);
    expect(edit.text).toContain(message);
    expect(await count(shop.c, 'product_images')).toBe(images);
    expect(await count(shop.c, 'products')).toBe(products);
    expect(await count(shop.c, 'audit_log')).toBe(audits);
    expect((await fetch(`${shop.url}/healthz`)).status).toBe(200);
  });

  it('a body far larger than any photo is cut off with 413', async () => {
    await admin.get('/admin/products/new');
    const r = await admin.postMultipart('/admin/products', await productFields({ sku: 'HUGE-1' }), { name: 'huge.jpg', type: 'image/jpeg', data: Buffer.alloc(40 * 1024 * 1024, 1) }).catch((e: Error) => e);
    // The server answers 413 and closes; a client still sending may see the connection end instead.
    if ('status' in r) expect(r.status).toBe(413);
    expect(await count(shop.c, 'products', { sku: 'HUGE-1' })).toBe(0);
    expect((await fetch(`${shop.url}/healthz`)).status).toBe(200);
  });
});

describe('CSV export', () => {
  it('products: UTF-8 with BOM, zh-TW headers, quoting and formula guard', async () => {
    await admin.postMultipart('/admin/products', await productFields({ sku: 'CSV-1', name: '=HYPERLINK("http://x"),"甜"', description: '第一行\n第二行, 有逗號' }));
    const r = await fetch(`${shop.url}/admin/export/products.csv`, { headers: { cookie: admin.cookie! } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const bytes = Buffer.from(await r.arrayBuffer());
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = bytes.toString('utf8').slice(1);
    expect(text.split('\r\n')[0]).toBe(ADMIN.csv.products.join(','));
    expect(text).toContain('TEA-001,阿里山高山烏龍茶（150g）,茶飲,680,是');
    expect(text).toContain(`"'=HYPERLINK(""http://x""),""甜"""`);
    expect(text).toContain('"第一行\n第二行, 有逗號"');
  });

  it('orders: one row per line item (and per fee or discount) in the date range', async () => {
    const shopper = newUserId();
    await settled(shop, await shop.say(shopper, 'cart TEA-002 2'));
    const order = await placeOrder(shop, shopper, 'SNK-001', 1);
    await shop.c.db.transaction((trx) => setAdjustment(trx, order.id, { kind: 'shipping', label: '宅配運費', amount: 100 }));
    const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
    const r = await fetch(`${shop.url}/admin/export/orders.csv?from=${today}&to=${today}`, { headers: { cookie: admin.cookie! } });
    const text = Buffer.from(await r.arrayBuffer()).toString('utf8');
    expect(text.startsWith('\uFEFF' + ADMIN.csv.orders.join(',') + '\r\n')).toBe(true);
    const rows = text.split('\r\n').filter((l) => l.startsWith(order.order_no + ','));
    expect(rows).toHaveLength(3);
    expect(rows.filter((l) => l.includes(`,${ADMIN.csv.goods},`))).toHaveLength(2);
    expect(rows.some((l) => l.includes(',TEA-002,日月潭紅玉紅茶（75g）,520,2,1040,'))).toBe(true);
    expect(rows.some((l) => l.includes(`,${ADMIN.csv.adjustment},,宅配運費,,,100,`))).toBe(true);
    expect(rows[0]).toContain(',1590,'); // the order's total: 1,040 + 450 + 100
    const none = await fetch(`${shop.url}/admin/export/orders.csv?from=2001-01-01&to=2001-01-02`, { headers: { cookie: admin.cookie! } });
    expect((await none.text()).split('\r\n').filter(Boolean)).toHaveLength(1);
  });

  it('invariants hold', async () => {
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});
