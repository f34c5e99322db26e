import fs from 'node:fs';
import { chromium, Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { checkInvariants } from '../../src/domain/invariants';
import { silentLogger } from '../../src/logger';
import { DevSandbox, DEV_SECRETS, startDevSandbox } from '../../src/sandbox/dev-sandbox';
import { ADMIN, T } from '../../src/texts';
import { requestLoginLink } from '../helpers/admin';
import { phonePhoto } from '../helpers/images';
import { paidOrder } from '../helpers/orders';
import { newUserId, settled, startShop, TestShop, waitFor } from '../helpers/shop';
import { createTestDb, dropQueueKeys, TestDb, testQueuePrefix } from '../helpers/test-db';

/**
 * The owner's back office as a person uses it on a phone: Debian's chromium at a 375 px wide
 * viewport (the narrowest common phone) logs in through the LINE link, adds a product with a
 * photo from the phone, sets its stock, and ships a paid order. Screenshots of each page go to
 * /tmp/back-office-*.png.
 */

const LAUNCH = {
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};
const PHONE = { viewport: { width: 375, height: 812 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'zh-TW' };

describe('the back office in a phone browser', () => {
  const owner = newUserId();
  let shop: TestShop;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    shop = await startShop({ label: 'bo_browser', sinopac: true, owners: [owner] });
    shop.line.setProfile(owner, { displayName: '王店長' });
    await shop.c.db('line_users').insert({ user_id: owner, display_name: '王店長' }).onConflict('user_id').merge();
    browser = await chromium.launch(LAUNCH);
    page = await (await browser.newContext(PHONE)).newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await shop?.close();
  });

  test('log in from LINE, add a product with a photo, set its stock, see it in the chat carousel, ship a paid order', async () => {
    const link = await requestLoginLink(shop, owner);
    await page.goto(link);
    await page.waitForURL(`${shop.url}/admin`);
    await page.getByRole('heading', { name: ADMIN.dashboard.title }).waitFor();
    await page.screenshot({ path: '/tmp/back-office-dashboard.png', fullPage: true });

    await page.getByRole('link', { name: ADMIN.nav.products, exact: true }).click();
    await page.getByRole('heading', { name: ADMIN.products.title }).waitFor();
    await page.screenshot({ path: '/tmp/back-office-products.png', fullPage: true });

    await page.getByRole('link', { name: ADMIN.products.newProduct }).click();
    const photoPath = '/tmp/back-office-IMG_0421.JPG';
    fs.writeFileSync(photoPath, await phonePhoto());
    await page.getByLabel(ADMIN.productForm.name).fill('梨山高冷茶（100g）');
    await page.getByLabel(ADMIN.productForm.sku).fill('tea-lishan');
    await page.getByLabel(ADMIN.productForm.price).fill('980');
    await page.getByLabel(ADMIN.productForm.category).selectOption({ label: '茶飲' });
    await page.getByLabel(ADMIN.productForm.description).fill('海拔 2,000 公尺，花香明顯，回甘持久。');
    await page.getByLabel(ADMIN.productForm.stock).fill('0');
    await page.getByLabel(ADMIN.productForm.photo).setInputFiles(photoPath);
    expect(await page.getByLabel(ADMIN.productForm.active).isChecked()).toBe(true);
    await page.screenshot({ path: '/tmp/back-office-product-new.png', fullPage: true });
    await page.getByRole('button', { name: ADMIN.save }).click();
    await page.getByText(ADMIN.productForm.created('梨山高冷茶（100g）')).waitFor();

    const stockForm = page.locator('#stock-form');
    await stockForm.getByLabel(ADMIN.productForm.stock).fill('20');
    await stockForm.getByLabel(ADMIN.productForm.reason).fill('第一批進貨');
    await stockForm.getByRole('button', { name: ADMIN.save }).click();
    await page.getByText(ADMIN.productForm.stockSet(20, 20)).waitFor();
    await page.screenshot({ path: '/tmp/back-office-product-edit.png', fullPage: true });

    const product = await shop.c.db('products as p').join('product_images as i', 'i.id', 'p.image_id').where('p.sku', 'TEA-LISHAN').first('p.id', 'i.sha256');
    const audit = await shop.c.db('audit_log').where({ action: 'stock.set', target_id: String(product.id) }).orderBy('id');
    expect(audit.map((a) => a.reason)).toEqual([ADMIN.productForm.initialStockReason, '第一批進貨']);

    // The shopper's 商品 carousel shows it, with a photo URL that serves a JPEG within LINE's limits.
    const shopper = newUserId();
    await settled(shop, await shop.say(shopper, '商品'));
    const carousel = shop.line.deliveredTo(shopper).at(-1)!.messages[0] as { contents: { contents: Array<{ hero?: { url: string }; body: { contents: Array<{ text: string }> } }> } };
    const bubble = carousel.contents.contents.find((b) => b.body.contents[0]?.text === '梨山高冷茶（100g）')!;
    expect(bubble.hero!.url).toBe(`${shop.url}/media/products/${product.sha256}.jpg`);
    const img = await fetch(bubble.hero!.url);
    expect(img.headers.get('content-type')).toBe('image/jpeg');
    const bytes = Buffer.from(await img.arrayBuffer());
    expect(bytes.length).toBeLessThanOrEqual(1_000_000);
    const meta = await sharp(bytes).metadata();
    expect(meta.format).toBe('jpeg');
    expect(meta.width).toBeLessThanOrEqual(1024);
    expect(meta.height).toBeLessThanOrEqual(1024);
    expect(meta.width).toBeLessThan(meta.height!); // EXIF rotation applied: the portrait photo stands up
    expect(meta.exif).toBeUndefined();

    // A paid order, shipped from its page with a carrier and tracking number.
    const order = await paidOrder(shop, shopper, 'TEA-LISHAN', 2);
    await page.getByRole('link', { name: ADMIN.nav.orders, exact: true }).click();
    await page.getByRole('heading', { name: ADMIN.orders.title, exact: true }).waitFor();
    await page.screenshot({ path: '/tmp/back-office-orders.png', fullPage: true });
    await page.getByRole('link', { name: order.order_no }).click();
    await page.getByRole('heading', { name: ADMIN.order.title(order.order_no) }).waitFor();
    await page.screenshot({ path: '/tmp/back-office-order.png', fullPage: true });
    const ship = page.locator('#ship-form');
    await ship.getByLabel(ADMIN.order.carrier).fill('黑貓宅急便');
    await ship.getByLabel(ADMIN.order.tracking).fill('9012-3456-7890');
    await ship.getByRole('button', { name: ADMIN.order.ship }).click();
    await page.getByText(T.ownerShipped(order.order_no)).waitFor();
    await page.screenshot({ path: '/tmp/back-office-order-shipped.png', fullPage: true });
    await waitFor(() => shop.line.textsTo(shopper).includes(T.shippedShopper(order.order_no, '9012-3456-7890')), 'shipped push');
    await new Promise((r) => setTimeout(r, 500)); // a second push would arrive by now
    expect(shop.line.textsTo(shopper).filter((t) => t === T.shippedShopper(order.order_no, '9012-3456-7890'))).toHaveLength(1);
    expect(await shop.c.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'shipped', carrier: '黑貓宅急便', tracking_no: '9012-3456-7890' });

    await page.getByRole('link', { name: ADMIN.nav.audit, exact: true }).click();
    await page.getByRole('heading', { name: ADMIN.audit.title }).waitFor();
    await page.screenshot({ path: '/tmp/back-office-audit.png', fullPage: true });
    await page.getByRole('link', { name: ADMIN.nav.categories, exact: true }).click();
    await page.screenshot({ path: '/tmp/back-office-categories.png', fullPage: true });

    await page.getByRole('button', { name: ADMIN.logout }).click();
    await page.getByRole('heading', { name: ADMIN.loggedOut }).waitFor();
    await page.goto(`${shop.url}/admin/orders`);
    await page.getByRole('heading', { name: ADMIN.loginHelpTitle }).waitFor();
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});

describe('the sandbox: the simulator\'s 店長 opens the back office', () => {
  let tdb: TestDb;
  let sandbox: DevSandbox;
  let browser: Browser;
  const queuePrefix = testQueuePrefix('bo_sandbox');

  beforeAll(async () => {
    tdb = await createTestDb('bo_sandbox', 10, false);
    sandbox = await startDevSandbox({ databaseUrl: tdb.url, port: 0, queuePrefix, log: silentLogger });
    browser = await chromium.launch(LAUNCH);
  });
  afterAll(async () => {
    await browser?.close();
    await sandbox?.close();
    await tdb?.destroy();
    await dropQueueKeys(queuePrefix);
  });

  test('店長 sends 後台 in the chat simulator and the button opens the back office', async () => {
    const page = await browser.newPage({ viewport: { width: 420, height: 860 } });
    await page.goto(sandbox.simulatorUrl);
    await page.selectOption('#user', DEV_SECRETS.owner);
    await page.fill('#text', '後台');
    await page.press('#text', 'Enter');
    const button = page.getByRole('link', { name: T.adminLinkButton });
    await button.waitFor();
    const [admin] = await Promise.all([page.context().waitForEvent('page'), button.click()]);
    await admin.waitForURL(`${sandbox.shopUrl}/admin`);
    await admin.getByRole('heading', { name: ADMIN.dashboard.title }).waitFor();
    expect(await admin.locator('.brand').textContent()).toBe(ADMIN.appName);
  });
});
