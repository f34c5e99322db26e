import { chromium, Browser, Page } from 'playwright-core';
import { startDevSandbox, DevSandbox, DEV_SECRETS } from '../../src/sandbox/dev-sandbox';
import { silentLogger } from '../../src/logger';
import { checkInvariants } from '../../src/domain/invariants';
import { createTestDb, dropQueueKeys, TestDb, testQueuePrefix } from '../helpers/test-db';
import { T } from '../../src/texts';
import { waitFor } from '../helpers/shop';

/**
 * A person's view: Debian's chromium drives the sandbox's LINE chat simulator, taps Flex buttons,
 * opens the ECPay checkout link, pays on the sandbox cashier and sees the receipt in the chat.
 */
describe('the sandbox in a browser', () => {
  let tdb: TestDb;
  let sandbox: DevSandbox;
  let browser: Browser;
  let page: Page;
  const queuePrefix = testQueuePrefix('browser');

  beforeAll(async () => {
    tdb = await createTestDb('browser', 10, false);
    sandbox = await startDevSandbox({ databaseUrl: tdb.url, port: 0, queuePrefix, log: silentLogger });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 420, height: 860 } });
  });
  afterAll(async () => {
    await browser?.close();
    await sandbox?.close();
    await tdb?.destroy();
    await dropQueueKeys(queuePrefix);
  });

  test('browse, add to cart, check out, give delivery details with the store map, pay by card on the ECPay cashier, see it all in the chat', async () => {
    await page.goto(sandbox.simulatorUrl);
    await page.fill('#text', '商品');
    await page.press('#text', 'Enter');
    await page.locator('.carousel .bubble').first().waitFor();
    expect(await page.locator('.carousel .bubble').count()).toBeGreaterThanOrEqual(10);
    await page.locator('.carousel .bubble').first().getByRole('button', { name: '加入購物車' }).click();
    await page.getByText(/^已更新：阿里山高山烏龍茶（150g） × 1$/).waitFor();
    expect(await page.locator('.flex .bubble').last().textContent()).toContain('NT$680');

    await page.locator('.quick button[data-q="結帳"]').click();
    await page.getByText('訂單已成立').waitFor();
    const order = await waitFor(() => sandbox.container.db('orders').where({ line_user_id: DEV_SECRETS.shopper }).first(), 'order row');
    expect(order).toMatchObject({ status: 'pending_payment', total: 680 });

    // Delivery before payment: store pickup at 7-ELEVEN, the store chosen on the sandbox's map.
    await page.getByRole('button', { name: '7-ELEVEN 取貨（NT$60）' }).last().click();
    const detailsLink = page.getByRole('link', { name: '填寫收件資料' }).last();
    await detailsLink.waitFor();
    const [form] = await Promise.all([page.context().waitForEvent('page'), detailsLink.click()]);
    await form.setViewportSize({ width: 390, height: 844 });
    await form.getByRole('heading', { name: '填寫收件資料' }).waitFor();
    expect(await form.isChecked('#k-UNIMARTC2C')).toBe(true);
    // Store pickup needs no address: the field is not shown.
    expect(await form.isVisible('#address')).toBe(false);
    await form.fill('#name', '林美玲');
    await form.fill('#phone', '0933222111');
    await form.screenshot({ path: '/tmp/delivery-page.png', fullPage: true });
    await form.getByRole('button', { name: '選擇門市' }).click();
    // Our page posts the signed Express/map form; the sandbox's map lists the chain's stores.
    await form.waitForURL(/\/Express\/map$/);
    await form.locator('li', { hasText: '鑫忠孝門市' }).getByRole('button', { name: '選擇此門市' }).click();
    // The map posts the store to our ServerReplyURL, which sends the browser back to the page.
    await form.waitForURL(/\/delivery\/[A-Za-z0-9_-]+\?saved=1$/);
    await form.locator('#saved').waitFor();
    expect(await form.textContent('#store-UNIMARTC2C')).toContain('鑫忠孝門市');
    await form.screenshot({ path: '/tmp/delivery-page-saved.png', fullPage: true });
    await form.close();
    await page.getByText('收件資料已完成').last().waitFor({ timeout: 15_000 });
    const ready = await sandbox.container.db('orders').where({ id: order.id }).first();
    expect(ready).toMatchObject({ delivery_method: 'cvs', delivery_sub_type: 'UNIMARTC2C', store_id: '131386', recipient_name: '林美玲', total: 740 });

    await page.getByRole('button', { name: '綠界 信用卡' }).last().click();
    const payLink = page.getByRole('link', { name: '前往付款' }).last();
    await payLink.waitFor();
    const [cashier] = await Promise.all([page.context().waitForEvent('page'), payLink.click()]);
    // Our checkout page auto-submits the AioCheckOut form; the sandbox cashier verifies its CheckMacValue.
    await cashier.waitForURL(/\/Cashier\/AioCheckOut\/V5|\/cashier/i, { timeout: 15_000 });
    await cashier.getByText('740').first().waitFor();
    await cashier.screenshot({ path: '/tmp/sandbox-cashier.png' });
    await cashier.getByRole('button', { name: /付款/ }).first().click();
    // After paying, ECPay posts the browser to OrderResultURL: our zh-TW result page.
    await cashier.waitForURL(/\/payments\/ecpay\/result/, { timeout: 15_000 });
    await cashier.getByRole('heading').waitFor();
    expect(await cashier.locator('h1').textContent()).toMatch(/付款成功|付款處理中/);

    await page.getByText('付款成功 🎉').waitFor({ timeout: 20_000 });
    await page.screenshot({ path: '/tmp/sandbox-chat.png', fullPage: true });
    const paid = await sandbox.container.db('orders').where({ id: order.id }).first();
    expect(paid).toMatchObject({ status: 'paid', paid_amount: 740 });
    const owner = sandbox.line.textsTo(DEV_SECRETS.owner);
    // One push for the new order, one for its payment.
    expect(owner.filter((t) => t.includes(order.order_no))).toHaveLength(2);
    expect(owner.filter((t) => t === T.ownerPaidAlt(order.order_no, 740))).toHaveLength(1);

    // The order in the chat: method, recipient (masked phone) and store.
    await page.fill('#text', `訂單 ${order.order_no}`);
    await page.press('#text', 'Enter');
    // The order-detail bubble (status 已付款), not the earlier summary with the same details.
    const detail = page.locator('.flex .bubble', { hasText: '已付款' }).filter({ hasText: '0933***111' }).last();
    await detail.waitFor();
    for (const s of ['7-ELEVEN 取貨', '林美玲 0933***111', '鑫忠孝門市', '臺北市中正區忠孝西路一段50號1樓']) expect(await detail.textContent()).toContain(s);
    await page.screenshot({ path: '/tmp/sandbox-chat-delivery.png', fullPage: true });
    expect(await checkInvariants(sandbox.container.db)).toEqual([]);
  });

  test('the rich menu under the chat: the shopper taps 說明 on the default menu; the owner gets the owner menu', async () => {
    await page.goto(sandbox.simulatorUrl);
    const menu = page.locator('#rm');
    await menu.getByRole('button', { name: '說明' }).click();
    await page.locator('.msg.user', { hasText: /^說明$/ }).last().waitFor();
    await page.locator('.msg.bot', { hasText: '🛒 購物說明' }).last().waitFor();
    expect(await page.locator('#rmbar').textContent()).toBe('購物選單 ▾');
    await page.screenshot({ path: '/tmp/sandbox-rich-menu.png' });

    await page.selectOption('#user', DEV_SECRETS.owner);
    await menu.getByRole('button', { name: '今日訂單' }).click();
    await page.locator('.msg.bot', { hasText: /今日訂單 \d+ 筆|今天還沒有訂單/ }).last().waitFor();
    expect(await page.locator('#rmbar').textContent()).toBe('店長選單 ▾');
    // The chat bar folds the menu away, as in LINE.
    await page.locator('#rmbar').click();
    expect(await menu.isHidden()).toBe(true);
  });
});
