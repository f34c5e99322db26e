import { checkInvariants } from '../../src/domain/invariants';
import type { Order } from '../../src/domain/orders';
import type { ShipmentRow } from '../../src/domain/shipments';
import { SHIPMENT, STORE_CHANGE } from '../../src/texts';
import { loggedIn } from '../helpers/admin';
import { signLogistics } from '../../src/gateways/ecpay-logistics/logistics-mac';
import { LOGISTICS_C2C, LogisticsShop, paidPickupOrder, startLogisticsShop } from '../helpers/delivery';
import { browserPost, hiddenInputs, unescapeHtml } from '../helpers/html-forms';
import { count, newUserId, settled, waitFor } from '../helpers/shop';

/**
 * A shipped parcel's pickup store closes (specs/ecpay-logistics.md §8 bot flow): the shopper gets
 * one push with a store-change link per closure, chooses a new store of the same chain on the
 * (sandbox) ECPay map, and the map's reply makes ECPay (UpdateStoreInfo) and the order take it.
 * Real PostgreSQL and Redis; ECPay is the local logistics sandbox, LINE the API double.
 */

const owner = newUserId();
let shop: LogisticsShop;

beforeAll(async () => {
  shop = await startLogisticsShop({ label: 'store_change', owners: [owner], env: { LOGISTICS_RECONCILE_EVERY_MINUTES: '600' } });
});
afterAll(async () => {
  await shop?.close();
});

const db = () => shop.c.db;
const say = async (user: string, text: string) => settled(shop, await shop.say(user, text));
const updates = () => shop.logistics.apiRequests.filter((r) => r.path === '/Express/UpdateStoreInfo').length;
const orderOf = async (id: number) => (await db()('orders').where({ id }).first<Order & { store_id: string; store_name: string; store_address: string | null }>())!;
const outboxCount = () => count(shop.c, 'outbox_messages');

function findAll(node: unknown, pred: (o: Record<string, unknown>) => boolean, out: Array<Record<string, unknown>> = []) {
  if (Array.isArray(node)) for (const n of node) findAll(n, pred, out);
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (pred(o)) out.push(o);
    for (const v of Object.values(o)) findAll(v, pred, out);
  }
  return out;
}

/** The store-change pushes a shopper got (each with its link). */
function storeClosedPushes(user: string): string[] {
  return shop.line
    .deliveredTo(user)
    .filter((d) => d.kind === 'push' && JSON.stringify(d.messages).includes(STORE_CHANGE.closedTitle))
    .map((d) => String(findAll(d.messages, (o) => o.type === 'uri' && String(o.uri).includes('/store-change/'))[0]?.uri ?? ''));
}

async function drained(): Promise<void> {
  await shop.logistics.idle();
  await waitFor(async () => {
    const [{ n }] = await db()('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
    return Number(n) === 0;
  }, 'outbox drained');
}

async function shippedPickupOrder(user: string, pick: Parameters<typeof paidPickupOrder>[2] = {}): Promise<{ order: Order; shipment: ShipmentRow }> {
  const order = await paidPickupOrder(shop, user, pick);
  await say(owner, `出貨 ${order.order_no}`);
  const shipment = await waitFor(async () => {
    const row = await db()('shipments').where({ order_id: order.id }).whereNot('status', 'failed').first<ShipmentRow>();
    return row && !['creating', 'unknown'].includes(row.status) ? row : null;
  }, 'shipment created');
  await drained();
  return { order, shipment };
}

async function getPage(url: string) {
  const res = await fetch(url, { redirect: 'manual' });
  return { status: res.status, html: await res.text() };
}

/** Opens the map from the store-change page and picks a store; returns the fields the browser posts back to us. */
async function pickStore(url: string, subType: string, storeId: string): Promise<Record<string, string>> {
  const page = await getPage(url);
  expect(page.status).toBe(200);
  const csrf = hiddenInputs(page.html)._csrf!;
  const res = await fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: shop.url },
    body: new URLSearchParams({ _csrf: csrf, op: 'map' }).toString(),
  });
  expect(res.status).toBe(200);
  const mapPage = await res.text();
  const action = unescapeHtml(/<form id="ecpay-map" method="post" action="([^"]+)"/.exec(mapPage)![1]!);
  expect(action).toBe(`${shop.logistics.url}/Express/map`);
  const fields = hiddenInputs(mapPage);
  // The parcel's own chain: changing chain is not possible at ECPay.
  expect(fields).toMatchObject({ LogisticsSubType: subType, IsCollection: 'N', Device: '1', ServerReplyURL: `${shop.url}/logistics/ecpay/map-reply` });
  const map = await browserPost(action, fields);
  expect(map.status).toBe(200);
  const store = new RegExp(`<input type="hidden" name="session" value="([^"]+)">\\s*<input type="hidden" name="store" value="${storeId}">`).exec(map.html);
  const chosen = await browserPost(`${shop.logistics.url}/Express/map/choose`, { session: store![1]!, store: storeId });
  return hiddenInputs(chosen.html);
}

async function postReply(fields: Record<string, string>) {
  const res = await fetch(`${shop.url}/logistics/ecpay/map-reply`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'null' },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: res.status, html: await res.text() };
}

describe('a closed pickup store, the shopper chooses a new one', () => {
  it('closure (status + 7-ELEVEN notice, replayed 3×) → one push with the link → map → ECPay and the order take the new store; a replayed reply does nothing', async () => {
    const user = newUserId();
    const { order, shipment } = await shippedPickupOrder(user);
    const id = shipment.logistics_id!;

    // Before the closure nothing lets the shopper change the store of the shipped parcel.
    expect(await count(shop.c, 'delivery_links', { order_id: order.id, purpose: 'store-change' })).toBe(0);
    const early = await shop.c.shipments.changePickupStore({ userId: user, source: 'line', role: 'shopper' }, { orderNo: order.order_no, storeId: '896539', storeName: '港墘門市' });
    expect(early.kind).toBe('not-possible');
    expect(updates()).toBe(0);

    await shop.logistics.advance(id, 'store-closed'); // 2104, and the store-change notice
    for (let i = 0; i < 3; i++) expect((await shop.logistics.notifyAgain(id)).body).toBe('1|OK');
    await drained();

    const links = storeClosedPushes(user);
    expect(links).toHaveLength(1);
    const url = links[0]!;
    expect(url.startsWith(`${shop.url}/store-change/`)).toBe(true);
    expect(await count(shop.c, 'delivery_links', { order_id: order.id, purpose: 'store-change' })).toBe(1);
    // The token is stored hashed only.
    expect(await count(shop.c, 'delivery_links', { token_hash: url.split('/').at(-1)! })).toBe(0);
    expect(shop.line.textsTo(owner).filter((t) => t === SHIPMENT.storeClosedAsked(order.order_no, '鑫忠孝門市'))).toHaveLength(1);

    const page = await getPage(url);
    expect(page.html).toContain(STORE_CHANGE.intro('7-ELEVEN'));
    expect(page.html).toContain('鑫忠孝門市');
    // Opening the map needs the link's CSRF token and our origin.
    const forged = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: shop.url }, body: 'op=map&_csrf=nope' });
    expect(forged.status).toBe(403);

    const reply = await pickStore(url, 'UNIMARTC2C', '896539');
    const [outbox0, audits0] = [await outboxCount(), await count(shop.c, 'audit_log', { action: 'order.store' })];
    const done = await postReply(reply);
    expect(done.status).toBe(200);
    expect(done.html).toContain(STORE_CHANGE.updatedTitle);
    expect(done.html).toContain('港墘門市');
    expect(updates()).toBe(1);
    expect(shop.logistics.getShipment({ allPayLogisticsId: id })!.receiverStoreId).toBe('896539');
    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped', store_id: '896539', store_name: '港墘門市', store_address: '臺北市內湖區內湖路一段300號' });
    expect(await db()('shipments').where({ id: shipment.id }).first()).toMatchObject({ status: 'created', store_change_claimed_at: null });
    const audits = await db()('audit_log').where({ action: 'order.store', target_id: order.order_no });
    expect(await count(shop.c, 'audit_log', { action: 'order.store' })).toBe(audits0 + 1);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ actor: `shopper:${user}`, source: 'line' });
    expect(audits[0].before).toMatchObject({ storeId: '131386' });
    await drained();
    const confirmation = STORE_CHANGE.changedShopper(order.order_no, '7-ELEVEN', '港墘門市', '臺北市內湖區內湖路一段300號');
    expect(shop.line.textsTo(user).filter((t) => t === confirmation)).toHaveLength(1);
    expect(shop.line.textsTo(owner).filter((t) => t === SHIPMENT.storeChangedOwner(order.order_no, '鑫忠孝門市', '港墘門市', '臺北市內湖區內湖路一段300號'))).toHaveLength(1);
    expect(await outboxCount()).toBe(outbox0 + 2);
    // ECPay's 2105 (store_changed) after our own UpdateStoreInfo is no problem to report.
    expect(shop.line.textsTo(owner).filter((t) => t.includes(order.order_no) && t.includes('異常'))).toHaveLength(0);

    // The same reply again (browser back, a double tap): done, nothing more at ECPay, in the order or in the chat.
    const again = await postReply(reply);
    expect(again.status).toBe(200);
    expect(again.html).toContain(STORE_CHANGE.doneTitle);
    expect(updates()).toBe(1);
    expect(await outboxCount()).toBe(outbox0 + 2);
    expect(await count(shop.c, 'audit_log', { action: 'order.store', target_id: order.order_no })).toBe(1);
    // The link says it is done (and ECPay's 2105 store_changed came meanwhile).
    const after = await getPage(url);
    expect(after.html).toContain(STORE_CHANGE.doneTitle);
    expect(after.html).toContain('港墘門市');
    expect(after.html).not.toContain('choose-store');
    expect(await db()('shipments').where({ id: shipment.id }).first()).toMatchObject({ last_rtn_code: '2105' });

    // The parcel goes on to the new store.
    await shop.logistics.advance(id, 'next');
    await shop.logistics.advance(id, 'next');
    await shop.logistics.advance(id, 'next'); // 2073 at 港墘門市
    await drained();
    expect(shop.line.textsTo(user).filter((t) => t.startsWith(`你的訂單 ${order.order_no} 已送達「港墘門市」`))).toHaveLength(1);
    expect(storeClosedPushes(user)).toHaveLength(1);
  });

  it('found by reconciliation (FamilyMart); ECPay refusing or not answering changes nothing and says so in zh-TW; trying again works', async () => {
    const user = newUserId();
    const { order, shipment } = await shippedPickupOrder(user, { subType: 'FAMIC2C', storeId: '006598', storeName: '全家台北站前店', storeAddress: '臺北市中正區館前路8號' });
    const id = shipment.logistics_id!;
    shop.logistics.advanceSilently(id, 'store-closed'); // never notified
    await db()('shipments').where({ id: shipment.id }).update({ last_checked_at: db().raw("now() - interval '5 hours'"), status_at: db().raw("now() - interval '5 hours'") });
    await shop.c.shipments.reconcileSweep();
    await drained();
    const links = storeClosedPushes(user);
    expect(links).toHaveLength(1);
    const url = links[0]!;

    const reply = await pickStore(url, 'FAMIC2C', '001779');
    const before = { order: await orderOf(order.id), shipment: await db()('shipments').where({ id: shipment.id }).first(), outbox: await outboxCount(), u: updates() };

    shop.logistics.injectRefusal('/Express/UpdateStoreInfo', 'ReceiverStoreID Is Error');
    const refused = await postReply(reply);
    expect(refused.status).toBe(502);
    expect(refused.html).toContain(STORE_CHANGE.failedTitle);
    expect(refused.html).toContain(STORE_CHANGE.refusedBody);
    expect(refused.html).toContain('id="retry"');
    expect(refused.html).not.toContain('ReceiverStoreID');

    shop.logistics.injectHttpStatus('/Express/UpdateStoreInfo', 502);
    const silent = await postReply(reply);
    expect(silent.status).toBe(502);
    expect(silent.html).toContain(STORE_CHANGE.unavailableBody);

    expect(updates()).toBe(before.u + 2);
    expect(shop.logistics.getShipment({ allPayLogisticsId: id })!.receiverStoreId).toBe('006598');
    expect(await orderOf(order.id)).toEqual(before.order);
    expect(await db()('shipments').where({ id: shipment.id }).first()).toEqual(before.shipment);
    expect(await outboxCount()).toBe(before.outbox);
    expect(await count(shop.c, 'audit_log', { action: 'order.store', target_id: order.order_no })).toBe(0);

    // Try again (the retry link leads back to the open page): ECPay takes it.
    const retry = unescapeHtml(/<a class="btn" id="retry" href="([^"]+)"/.exec(silent.html)![1]!);
    expect((await getPage(`${shop.url}${retry}`)).html).toContain('choose-store');
    const ok = await postReply(reply);
    expect(ok.html).toContain(STORE_CHANGE.updatedTitle);
    expect(shop.logistics.getShipment({ allPayLogisticsId: id })!.receiverStoreId).toBe('001779');
    expect(await orderOf(order.id)).toMatchObject({ store_id: '001779', store_name: '全家新竹竹北店' });
    await drained();
    expect(shop.line.textsTo(user).filter((t) => t === STORE_CHANGE.changedShopper(order.order_no, '全家', '全家新竹竹北店', '新竹縣竹北市光明六路10號'))).toHaveLength(1);
  });

  it('the owner fixing it in the back office (same use case) makes the shopper\'s link say it is done; an expired link says so', async () => {
    const user = newUserId();
    const { order, shipment } = await shippedPickupOrder(user);
    await shop.logistics.advance(shipment.logistics_id!, 'store-closed');
    await drained();
    const url = storeClosedPushes(user)[0]!;
    expect(url).toBeTruthy();

    await db()('delivery_links').where({ order_id: order.id, purpose: 'store-change' }).update({ expires_at: db().raw("now() - interval '1 minute'") });
    const expired = await getPage(url);
    expect(expired.status).toBe(410);
    expect(expired.html).toContain(STORE_CHANGE.expiredBody);
    await db()('delivery_links').where({ order_id: order.id, purpose: 'store-change' }).update({ expires_at: db().raw("now() + interval '3 days'") });
    const reply = await pickStore(url, 'UNIMARTC2C', '244963');

    const admin = await loggedIn(shop, owner);
    // The order's page says the shopper was asked, and still offers the owner's form.
    const before = (await admin.get(`/admin/orders/${order.order_no}`)).text;
    expect(before).toContain('id="shopper-asked"');
    expect(before).toContain('id="store-form"');
    const ownerTexts0 = shop.line.textsTo(owner).length;
    const res = await admin.post(`/admin/orders/${order.order_no}/store`, { store_id: '896539', store_name: '港墘門市' });
    expect(res.status).toBe(303);
    expect(await orderOf(order.id)).toMatchObject({ store_id: '896539', store_name: '港墘門市' });
    const audit = await db()('audit_log').where({ action: 'order.store', target_id: order.order_no });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: `owner:${owner}`, source: 'web' });
    await drained();
    // The shopper learns the new store; the owner, who did it, gets no push about it.
    expect(shop.line.textsTo(user).filter((t) => t === STORE_CHANGE.changedShopper(order.order_no, '7-ELEVEN', '港墘門市', null))).toHaveLength(1);
    expect(shop.line.textsTo(owner).slice(ownerTexts0).filter((t) => t.includes(order.order_no))).toHaveLength(0);

    const page = await getPage(url);
    expect(page.html).toContain(STORE_CHANGE.doneTitle);
    expect(page.html).toContain('港墘門市');
    // The shopper's map reply from before the owner's fix changes nothing.
    const u0 = updates();
    const late = await postReply(reply);
    expect(late.html).toContain(STORE_CHANGE.doneTitle);
    expect(updates()).toBe(u0);
    expect(await orderOf(order.id)).toMatchObject({ store_id: '896539' });
  });

  it('two replies at the same moment (double tap): one UpdateStoreInfo, one new store, one confirmation', async () => {
    const user = newUserId();
    const { order, shipment } = await shippedPickupOrder(user, { subType: 'OKMARTC2C', storeId: '1328', storeName: 'OK台北南京店', storeAddress: '臺北市中山區南京東路二段66號' });
    await shop.logistics.advance(shipment.logistics_id!, 'store-closed');
    await drained();
    const url = storeClosedPushes(user)[0]!;
    const reply = await pickStore(url, 'OKMARTC2C', '1046');
    const u0 = updates();
    const pages = await Promise.all([postReply(reply), postReply(reply)]);
    const titles = pages.map((p) => (p.html.includes(STORE_CHANGE.updatedTitle) ? 'updated' : p.html.includes(STORE_CHANGE.doneTitle) ? 'done' : p.html.includes(STORE_CHANGE.busyBody) ? 'busy' : p.html));
    expect(titles.filter((t) => t === 'updated')).toHaveLength(1);
    expect(titles.filter((t) => t === 'done' || t === 'busy')).toHaveLength(1);
    expect(updates()).toBe(u0 + 1);
    expect(await orderOf(order.id)).toMatchObject({ store_id: '1046', store_name: 'OK台南中華店' });
    await drained();
    expect(shop.line.textsTo(user).filter((t) => t.startsWith(`已更新訂單 ${order.order_no} 的取件門市`))).toHaveLength(1);
    expect(await count(shop.c, 'audit_log', { action: 'order.store', target_id: order.order_no })).toBe(1);
  });

  it('an UpdateStoreInfo answer lost in a timeout records nothing; when ECPay then reports the change (2105) the owner is alerted to check', async () => {
    const user = newUserId();
    const { order, shipment } = await shippedPickupOrder(user);
    await shop.logistics.advance(shipment.logistics_id!, 'store-closed');
    await drained();
    const url = storeClosedPushes(user)[0]!;
    const reply = await pickStore(url, 'UNIMARTC2C', '244963');
    // ECPay takes the store but answers after the shop's gateway timeout.
    shop.logistics.injectDelay('/Express/UpdateStoreInfo', 3500);
    const page = await postReply(reply);
    expect(page.status).toBe(502);
    expect(page.html).toContain(STORE_CHANGE.unavailableBody);
    expect(await orderOf(order.id)).toMatchObject({ store_id: '131386' });
    await waitFor(async () => (await db()('shipments').where({ id: shipment.id, last_rtn_code: '2105' }).first()) ?? null, '2105 applied');
    await drained();
    expect(shop.line.textsTo(owner).filter((t) => t === SHIPMENT.problem(order.order_no, '2105', '已申請門市變更'))).toHaveLength(1);
    // The link no longer offers the map (ECPay will not take another store), and says to ask the shop.
    const after = await getPage(url);
    expect(after.html).not.toContain('choose-store');
    expect(after.html).toContain(STORE_CHANGE.notNeededBody);
  });

  it('a 7-ELEVEN store-change notice alone opens the closure; a notice naming another store changes nothing', async () => {
    const user = newUserId();
    const { order, shipment } = await shippedPickupOrder(user);
    const notice = async (storeId: string) => {
      const fields = signLogistics({ AllPayLogisticsID: shipment.logistics_id!, StoreType: '01', Status: '01', StoreID: storeId }, { hashKey: LOGISTICS_C2C.hashKey, hashIv: LOGISTICS_C2C.hashIv });
      const res = await fetch(`${shop.url}/logistics/ecpay/notify`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
      expect(await res.text()).toBe('1|OK');
    };
    await notice('244963'); // not this parcel's store
    await drained();
    expect(storeClosedPushes(user)).toHaveLength(0);
    expect(await count(shop.c, 'delivery_links', { order_id: order.id, purpose: 'store-change' })).toBe(0);

    await notice('131386');
    await notice('131386');
    await drained();
    const links = storeClosedPushes(user);
    expect(links).toHaveLength(1);
    expect((await getPage(links[0]!)).html).toContain('choose-store');
  });

  it('a checkout link cannot open the store-change page, nor a store-change link the checkout page', async () => {
    const links = await db()('delivery_links').where({ purpose: 'store-change' }).select('map_token');
    expect(links.length).toBeGreaterThan(0);
    const asCheckout = await getPage(`${shop.url}/delivery/${links[0]!.map_token}`);
    expect(asCheckout.status).toBe(404);
    // A checkout link of a shipped order (its map token) on the store-change page.
    const [{ id: orderId }] = await db()('orders').where({ status: 'shipped' }).limit(1).select('id');
    const token = 'CheckoutMapToken0001';
    await db()('delivery_links').insert({ order_id: orderId, token_hash: 'x'.repeat(64), map_token: token, expires_at: db().raw("now() + interval '1 hour'"), csrf_token: 'c'.repeat(24) });
    const asStoreChange = await getPage(`${shop.url}/store-change/${token}`);
    expect(asStoreChange.status).toBe(404);
    expect(asStoreChange.html).toContain(STORE_CHANGE.notFoundTitle);
  });
});

describe('afterwards', () => {
  it('the database invariants hold', async () => {
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});
