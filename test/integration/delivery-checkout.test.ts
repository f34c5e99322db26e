import type { Order } from '../../src/domain/orders';
import { checkInvariants } from '../../src/domain/invariants';
import { DELIVERY_ERRORS, DELIVERY_FORM, DELIVERY_TEXT } from '../../src/texts';
import { browserPost, hiddenInputs, unescapeHtml } from '../helpers/html-forms';
import { choosePayment, placeOrder, TEST_RECIPIENT } from '../helpers/orders';
import { count, newUserId, settled, startShop, TestShop, waitFor } from '../helpers/shop';

/**
 * Delivery at checkout against real PostgreSQL and Redis, LINE and the banks replaced at HTTP by
 * the doubles, ECPay's store map by the logistics sandbox: the chat's delivery buttons, the
 * details page (its validation, CSRF and closed states), the store map and its reply, the fee,
 * the total the bank is asked for, free shipping and the remembered details.
 */

type Msg = { type: string; altText?: string; text?: string; contents?: unknown };

function findAll(node: unknown, pred: (o: Record<string, unknown>) => boolean, out: Array<Record<string, unknown>> = []) {
  if (Array.isArray(node)) for (const n of node) findAll(n, pred, out);
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (pred(o)) out.push(o);
    for (const v of Object.values(o)) findAll(v, pred, out);
  }
  return out;
}
const postbacks = (m: unknown) => findAll(m, (o) => o.type === 'postback').map((o) => String(o.data));
const uris = (m: unknown) => findAll(m, (o) => o.type === 'uri').map((o) => String(o.uri));

describe('delivery at checkout', () => {
  let shop: TestShop;
  const FEES = { SHIPPING_HOME_FEE: '100', SHIPPING_CVS_FEE: '60', FREE_SHIPPING_OVER: '1000' };

  beforeAll(async () => {
    shop = await startShop({ label: 'delivery-checkout', sinopac: true, logistics: true, env: FEES });
  });
  afterAll(async () => {
    await shop?.close();
  });

  const messagesTo = (user: string) => shop.line.deliveredTo(user).flatMap((d) => d.messages as Msg[]);
  const orderRow = async (id: number) => (await shop.c.db('orders').where({ id }).first<Order>())!;
  const shippingRows = (orderId: number) => shop.c.db('order_adjustments').where({ order_id: orderId, kind: 'shipping' });
  const pushesTo = async (user: string) => Number((await shop.c.db('outbox_messages').where({ recipient: user, kind: 'notify-shopper' }).count<{ n: number }[]>({ n: '*' }))[0]!.n);

  /** Taps one delivery method in the chat; returns the page URL from the answer. */
  async function pageLink(user: string, order: Order, key: string): Promise<string> {
    await settled(shop, await shop.tap(user, `action=dlv&o=${order.order_no}&m=${key}`));
    const last = messagesTo(user).at(-1)!;
    const url = uris(last).find((u) => u.startsWith(`${shop.url}/delivery/`));
    if (!url) throw new Error(`no delivery link in ${JSON.stringify(last)}`);
    return url;
  }

  async function getPage(url: string): Promise<{ status: number; html: string; csp: string | null }> {
    const res = await fetch(url);
    return { status: res.status, html: await res.text(), csp: res.headers.get('content-security-policy') };
  }

  const csrfOf = (html: string) => hiddenInputs(html)._csrf!;

  /** Posts the page's form as the browser does (our origin), without following redirects. */
  async function postPage(url: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
    const res = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: shop.url, ...headers },
      body: new URLSearchParams(fields).toString(),
    });
    return { status: res.status, html: await res.text(), location: res.headers.get('location') };
  }

  /** Opens the store map from the page, picks a store in the sandbox; returns the reply fields the browser would post to us. */
  async function pickStore(url: string, csrf: string, key: string, storeId: string, typed: { name?: string; phone?: string } = {}) {
    const mapPage = await postPage(url, { _csrf: csrf, op: 'map', key, name: typed.name ?? '', phone: typed.phone ?? '', zip: '', address: '' });
    expect(mapPage.status).toBe(200);
    const action = unescapeHtml(/<form id="ecpay-map" method="post" action="([^"]+)"/.exec(mapPage.html)![1]!);
    expect(action).toBe(`${shop.logistics!.url}/Express/map`);
    const fields = hiddenInputs(mapPage.html);
    expect(fields).toMatchObject({ LogisticsSubType: key, IsCollection: 'N', Device: '1', ServerReplyURL: `${shop.url}/logistics/ecpay/map-reply` });
    const map = await browserPost(action, fields);
    expect(map.status).toBe(200);
    const store = new RegExp(`<input type="hidden" name="session" value="([^"]+)">\\s*<input type="hidden" name="store" value="${storeId}">`).exec(map.html);
    const chosen = await browserPost(`${shop.logistics!.url}/Express/map/choose`, { session: store![1]!, store: storeId });
    const replyAction = unescapeHtml(/<form id="result" method="post" action="([^"]+)"/.exec(chosen.html)![1]!);
    expect(replyAction).toBe(`${shop.url}/logistics/ecpay/map-reply`);
    return hiddenInputs(chosen.html);
  }

  const postReply = (fields: Record<string, string>) =>
    fetch(`${shop.url}/logistics/ecpay/map-reply`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'null' },
      body: new URLSearchParams(fields).toString(),
    });

  test('結帳 offers delivery methods, not payment; a payment tap before the details is told to finish delivery and asks no bank', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'TEA-001', 1, { delivery: false });
    const reply = messagesTo(user).at(-1)!;
    const data = postbacks(reply);
    expect(data).toEqual(expect.arrayContaining([`action=dlv&o=${order.order_no}&m=home`, `action=dlv&o=${order.order_no}&m=UNIMARTC2C`, `action=dlv&o=${order.order_no}&m=FAMIC2C`]));
    expect(data.some((d) => d.startsWith('action=pay'))).toBe(false);
    // No profile yet: no one-tap choice.
    expect(data).not.toContain(`action=dlv&o=${order.order_no}&m=last`);

    await choosePayment(shop, user, order, 'sinopac-atm');
    const answer = shop.line.deliveredTo(user).at(-1)!.messages as Msg[];
    expect(answer[0]!.text).toBe(DELIVERY_TEXT.deliveryFirst(order.order_no));
    expect(postbacks(answer[1])).toContain(`action=dlv&o=${order.order_no}&m=home`);
    expect(await count(shop.c, 'payment_attempts', { order_id: order.id })).toBe(0);
    expect(shop.sinopac!.orders().filter((o) => o.orderNo.length > 0 && o.prdtName.includes(order.order_no))).toHaveLength(0);
    expect((await orderRow(order.id)).hold_expires_at).toEqual(order.hold_expires_at);

    // The wallet is held back the same way.
    await settled(shop, await shop.tap(user, `action=pay&o=${order.order_no}&m=wallet`));
    expect((shop.line.deliveredTo(user).at(-1)!.messages as Msg[])[0]!.text).toBe(DELIVERY_TEXT.deliveryFirst(order.order_no));
  });

  test('store pickup: page → store map → reply stored, fee added once (reply and form twice), one push, the bank asked for goods + fee', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'TEA-001', 1, { delivery: false }); // 680 < 1000: fee 60
    const url = await pageLink(user, order, 'UNIMARTC2C');
    const page = await getPage(url);
    expect(page.status).toBe(200);
    expect(page.csp).toContain("form-action 'self'");
    expect(page.csp).toContain("frame-ancestors 'none'");
    expect(page.html).toContain(`id="k-UNIMARTC2C" value="UNIMARTC2C" checked`);
    for (const label of ['收件人', '手機', '地址', '確認', DELIVERY_FORM.chooseStore]) expect(page.html).toContain(label);

    const pushesBefore = await pushesTo(user);
    const reply = await pickStore(url, csrfOf(page.html), 'UNIMARTC2C', '131386', { name: '林美玲', phone: '0933-222-111' });
    const back = await postReply(reply);
    expect(back.status).toBe(303);
    const backUrl = new URL(back.headers.get('location')!, shop.url).toString();

    let o = await orderRow(order.id);
    expect(o).toMatchObject({
      delivery_method: 'cvs', delivery_sub_type: 'UNIMARTC2C', store_id: '131386', store_name: '鑫忠孝門市', recipient_name: '林美玲', recipient_phone: '0933222111',
      status: 'pending_payment', total: 680 + 60,
    });
    expect(o.delivery_ready_at).not.toBeNull();
    await waitFor(async () => (await pushesTo(user)) === pushesBefore + 1, 'the delivery summary pushed');

    // The reply posted again (back button, a double tap): nothing new.
    expect((await postReply(reply)).status).toBe(303);
    // The page the browser came back to, and its form submitted twice.
    const again = await getPage(backUrl);
    expect(again.status).toBe(200);
    expect(again.html).toContain('鑫忠孝門市');
    const form = { _csrf: csrfOf(again.html), op: 'save', key: 'UNIMARTC2C', name: '林美玲', phone: '0933222111', zip: '', address: '' };
    // Twice at the same moment (a double tap): the order row serialises them.
    const saves = await Promise.all([postPage(backUrl, form), postPage(backUrl, form)]);
    for (const saved of saves) {
      expect(saved.status).toBe(303);
      expect(saved.location).toContain('?saved=1');
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(await pushesTo(user)).toBe(pushesBefore + 1);
    expect(await shippingRows(order.id)).toEqual([expect.objectContaining({ amount: 60, label: '運費（7-ELEVEN 取貨）' })]);
    o = await orderRow(order.id);
    expect(o.total).toBe(740);

    // The push: the store, masked phone and payment buttons.
    const pushed = JSON.stringify(shop.line.deliveredTo(user).at(-1)!.messages);
    expect(pushed).toContain('鑫忠孝門市');
    expect(pushed).toContain('臺北市中正區忠孝西路一段50號1樓');
    expect(pushed).toContain('0933***111');
    expect(pushed).not.toContain('0933222111');
    expect(pushed).toContain(`action=pay&o=${order.order_no}&m=sinopac-atm`);

    // The bank is asked for goods + fee.
    const attempt = (await choosePayment(shop, user, order, 'sinopac-atm'))!;
    expect(attempt).toMatchObject({ amount: 740, status: 'pending' });
    expect(shop.sinopac!.getOrder(attempt.trade_no)!.amountCents).toBe(74000);

    // Once a payment attempt exists, the details are fixed.
    const locked = await postPage(backUrl, form);
    expect(locked.status).toBe(410);
    expect(locked.html).toContain(DELIVERY_FORM.paymentStartedBody);
    expect((await postReply(reply)).status).toBe(410);
    // Opened again: the details, read-only, phone masked.
    const view = await getPage(backUrl);
    expect(view.status).toBe(410);
    expect(view.html).toContain(DELIVERY_FORM.paymentStartedBody);
    expect(view.html).toContain('林美玲 0933***111');
    expect(view.html).toContain('鑫忠孝門市');
    expect(view.html).not.toContain('name="name"');
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });

  test('home delivery: an invalid phone or an empty address is refused in zh-TW, nothing is written, the hold is kept', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'TEA-002', 1, { delivery: false });
    const url = await pageLink(user, order, 'home');
    const page = await getPage(url);
    const csrf = csrfOf(page.html);

    const bad = await postPage(url, { _csrf: csrf, op: 'save', key: 'home', name: '王小美', phone: '12345', zip: '', address: '   ' });
    expect(bad.status).toBe(422);
    expect(bad.html).toContain(DELIVERY_ERRORS.phoneFormat);
    expect(bad.html).toContain(DELIVERY_ERRORS.addressRequired);
    // The form comes back with what was typed.
    expect(bad.html).toContain('value="王小美"');
    expect(bad.html).toContain('value="12345"');

    const badName = await postPage(url, { _csrf: csrf, op: 'save', key: 'home', name: 'Amy 2', phone: '0912345678', zip: '', address: '台北市信義區市府路1號' });
    expect(badName.status).toBe(422);
    expect(badName.html).toContain(DELIVERY_ERRORS.nameChars);

    const o = await orderRow(order.id);
    expect(o).toMatchObject({ status: 'pending_payment', total: 520, delivery_method: null, recipient_name: null, recipient_phone: null, recipient_address: null, delivery_ready_at: null });
    expect(o.hold_expires_at).toEqual(order.hold_expires_at);
    expect(await shippingRows(order.id)).toHaveLength(0);
    expect(await count(shop.c, 'delivery_profiles', { line_user_id: user })).toBe(0);

    // Without the CSRF token, or from another origin: refused.
    expect((await postPage(url, { op: 'save', key: 'home', name: '王小美', phone: '0912345678', zip: '', address: '台北市信義區市府路1號' })).status).toBe(403);
    expect((await postPage(url, { _csrf: csrf, op: 'save', key: 'home', name: '王小美', phone: '0912345678', zip: '', address: '台北市信義區市府路1號' }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await orderRow(order.id)).delivery_ready_at).toBeNull();

    // Fixed: saved with the fee.
    const ok = await postPage(url, { _csrf: csrf, op: 'save', key: 'home', name: '王小美', phone: '0912 345 678', zip: '110', address: '台北市信義區市府路1號' });
    expect(ok.status).toBe(303);
    expect(await orderRow(order.id)).toMatchObject({ delivery_method: 'home', recipient_phone: '0912345678', recipient_zip: '110', total: 620 });
  });

  test('free shipping at FREE_SHIPPING_OVER; the details are remembered and one tap reuses them on the next order', async () => {
    const user = newUserId();
    const first = await placeOrder(shop, user, 'TEA-003', 1, { delivery: false }); // 1280 ≥ 1000
    const url = await pageLink(user, first, 'home');
    const page = await getPage(url);
    expect(page.html).toContain('免運費');
    const ok = await postPage(url, { _csrf: csrfOf(page.html), op: 'save', key: 'home', name: TEST_RECIPIENT.name, phone: TEST_RECIPIENT.phone, zip: '', address: TEST_RECIPIENT.address });
    expect(ok.status).toBe(303);
    expect(await orderRow(first.id)).toMatchObject({ total: 1280, delivery_method: 'home' });
    expect(await shippingRows(first.id)).toHaveLength(0);
    expect(await shop.c.db('delivery_profiles').where({ line_user_id: user }).first()).toMatchObject({ delivery_method: 'home', recipient_address: TEST_RECIPIENT.address });
    await settled(shop, await shop.say(user, `取消 ${first.order_no}`));

    const second = await placeOrder(shop, user, 'SNK-001', 1, { delivery: false }); // 450: fee 100
    const reply = messagesTo(user).at(-1)!;
    expect(postbacks(reply)[0]).toBe(`action=dlv&o=${second.order_no}&m=last`);
    await settled(shop, await shop.tap(user, `action=dlv&o=${second.order_no}&m=last`));
    expect(await orderRow(second.id)).toMatchObject({ delivery_method: 'home', recipient_name: TEST_RECIPIENT.name, recipient_address: TEST_RECIPIENT.address, total: 550 });
    const ready = shop.line.deliveredTo(user).at(-1)!.messages;
    expect(JSON.stringify(ready)).toContain('0912***678');
    expect(postbacks(ready)).toContain(`action=pay&o=${second.order_no}&m=sinopac-atm`);
  });

  test('訂單 <orderNo> shows method, recipient with a masked phone, the store, and the shipment once there is one', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'SNK-002', 1, { delivery: false });
    const url = await pageLink(user, order, 'FAMIC2C');
    const page = await getPage(url);
    // Store chosen before the recipient: the store is on the order, the details not yet complete.
    const reply = await pickStore(url, csrfOf(page.html), 'FAMIC2C', '006598');
    // A reply for another chain than the map that was opened is refused.
    expect((await postReply({ ...reply, LogisticsSubType: 'UNIMARTC2C', CVSStoreID: '131386' })).status).toBe(400);
    expect((await orderRow(order.id)).store_id).toBeNull();
    const back = await postReply(reply);
    expect(back.status).toBe(303);
    let o = await orderRow(order.id);
    expect(o).toMatchObject({ delivery_method: 'cvs', store_id: '006598', delivery_ready_at: null });
    await waitFor(async () => JSON.stringify(shop.line.deliveredTo(user).at(-1)?.messages ?? '').includes('全家台北站前店'), 'store confirmation pushed');
    const backUrl = new URL(back.headers.get('location')!, shop.url).toString();
    const returned = await getPage(backUrl);
    expect(returned.html).toContain('全家台北站前店');
    const saved = await postPage(backUrl, { _csrf: csrfOf(returned.html), op: 'save', key: 'FAMIC2C', name: 'Alice', phone: '0987654321', zip: '', address: '' });
    expect(saved.status).toBe(303);
    o = await orderRow(order.id);
    expect(o).toMatchObject({ recipient_name: 'Alice', total: 320 + 60 });

    // Changed to home delivery before paying: the fee follows (one shipping line, recomputed), the store goes.
    const edit = await getPage(backUrl);
    expect((await postPage(backUrl, { _csrf: csrfOf(edit.html), op: 'save', key: 'home', name: 'Alice', phone: '0987654321', zip: '', address: '新北市板橋區中山路一段161號' })).status).toBe(303);
    expect(await orderRow(order.id)).toMatchObject({ delivery_method: 'home', store_id: null, total: 320 + 100 });
    expect(await shippingRows(order.id)).toEqual([expect.objectContaining({ amount: 100, label: '運費（宅配）' })]);
    // And back to the store (the map again): 60 again.
    const reply2 = await pickStore(backUrl, csrfOf((await getPage(backUrl)).html), 'FAMIC2C', '006598');
    expect((await postReply(reply2)).status).toBe(303);
    o = await orderRow(order.id);
    expect(o).toMatchObject({ delivery_method: 'cvs', store_id: '006598', recipient_name: 'Alice', total: 320 + 60 });
    expect(await shippingRows(order.id)).toEqual([expect.objectContaining({ amount: 60 })]);

    await settled(shop, await shop.say(user, `訂單 ${order.order_no}`));
    let detail = JSON.stringify(shop.line.deliveredTo(user).at(-1)!.messages);
    for (const s of ['全家 取貨', 'Alice 0987***321', '全家台北站前店', '臺北市中正區館前路8號']) expect(detail).toContain(s);
    expect(detail).not.toContain('0987654321');

    await shop.c.db('shipments').insert({ order_id: order.id, provider: 'ecpay', delivery_sub_type: 'FAMIC2C', merchant_trade_no: `T${Date.now()}`, shipment_no: '09936343518', status: 'arrived_at_store' });
    await settled(shop, await shop.say(user, `訂單 ${order.order_no}`));
    detail = JSON.stringify(shop.line.deliveredTo(user).at(-1)!.messages);
    expect(detail).toContain('09936343518');
    expect(detail).toContain('已到店，可取貨');
  });

  test('an unknown or expired link, and a map reply that is not ours, get a clear page and change nothing', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'SNK-003', 1, { delivery: false });
    const url = await pageLink(user, order, 'home');
    expect((await getPage(`${shop.url}/delivery/${'x'.repeat(27)}`)).status).toBe(404);
    await shop.c.db('delivery_links').where({ order_id: order.id }).update({ expires_at: new Date(Date.now() - 1000) });
    const expired = await getPage(url);
    expect(expired.status).toBe(410);
    expect(expired.html).toContain(DELIVERY_FORM.linkExpiredBody);

    const forged = await postReply({ MerchantID: '2000933', MerchantTradeNo: 'M123', LogisticsSubType: 'UNIMARTC2C', CVSStoreID: '131386', CVSStoreName: 'x', CVSAddress: 'y', CVSTelephone: '', CVSOutSide: '0', ExtraData: 'nosuchtoken' });
    expect(forged.status).toBe(400);
    const wrongMerchant = await postReply({ MerchantID: '9999999', MerchantTradeNo: 'M123', LogisticsSubType: 'UNIMARTC2C', CVSStoreID: '131386', CVSStoreName: 'x', CVSAddress: 'y', CVSTelephone: '', CVSOutSide: '0', ExtraData: 'abc' });
    expect(wrongMerchant.status).toBe(400);
    expect(await orderRow(order.id)).toMatchObject({ delivery_method: null, store_id: null, delivery_ready_at: null });
  });
});

describe('delivery without ECPay logistics configured', () => {
  let shop: TestShop;
  beforeAll(async () => {
    shop = await startShop({ label: 'delivery-home-only', env: { SHIPPING_HOME_FEE: '90' } });
  });
  afterAll(async () => {
    await shop?.close();
  });

  test('only home delivery is offered; a stale store-pickup tap gets a clear answer', async () => {
    const user = newUserId();
    const order = await placeOrder(shop, user, 'TEA-001', 1, { delivery: false });
    const data = postbacks(shop.line.deliveredTo(user).at(-1)!.messages);
    expect(data.filter((d) => d.startsWith('action=dlv'))).toEqual([`action=dlv&o=${order.order_no}&m=home`]);
    await settled(shop, await shop.tap(user, `action=dlv&o=${order.order_no}&m=UNIMARTC2C`));
    expect((shop.line.deliveredTo(user).at(-1)!.messages as Msg[])[0]!.text).toBe(DELIVERY_TEXT.methodUnavailable);
    expect(await count(shop.c, 'delivery_links', { order_id: order.id })).toBe(0);
  });
});
