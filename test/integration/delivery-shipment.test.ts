import { checkInvariants } from '../../src/domain/invariants';
import type { Order } from '../../src/domain/orders';
import type { ShipmentRow } from '../../src/domain/shipments';
import { signLogistics } from '../../src/gateways/ecpay-logistics/logistics-mac';
import { formatEcpayDateTime } from '../../src/gateways/ecpay/ecpay-client';
import { SHIPMENT, T } from '../../src/texts';
import { LOGISTICS_C2C, LogisticsShop, paidPickupOrder, startLogisticsShop } from '../helpers/delivery';
import { loggedIn } from '../helpers/admin';
import { paidOrder } from '../helpers/orders';
import { count, newUserId, settled, waitFor } from '../helpers/shop';

const owner = newUserId();
let shop: LogisticsShop;

beforeAll(async () => {
  shop = await startLogisticsShop({
    label: 'delivery_shipment',
    owners: [owner],
    // The scheduled sweep stays out of the way (default 4 hours without news); tests sweep by hand.
    env: { LOGISTICS_RECONCILE_EVERY_MINUTES: '600' },
  });
});
afterAll(async () => {
  await shop?.close();
});

const db = () => shop.c.db;
const say = async (user: string, text: string) => settled(shop, await shop.say(user, text));
const creates = () => shop.logistics.apiRequests.filter((r) => r.path === '/Express/Create').length;
const queries = () => shop.logistics.apiRequests.filter((r) => r.path === '/Helper/QueryLogisticsTradeInfo/V5').length;
const orderOf = (id: number) => db()('orders').where({ id }).first<Order>();

async function drained(): Promise<void> {
  await shop.logistics.idle();
  await waitFor(async () => {
    const [{ n }] = await db()('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
    return Number(n) === 0;
  }, 'outbox drained');
}

/** Waits until the order's live shipment reached ECPay (status created or later). */
async function createdShipment(orderId: number): Promise<ShipmentRow> {
  const s = await waitFor(async () => {
    const row = await db()('shipments').where({ order_id: orderId }).whereNot('status', 'failed').first<ShipmentRow>();
    return row && !['creating', 'unknown'].includes(row.status) ? row : null;
  }, `shipment of order ${orderId} created`);
  await drained();
  return s;
}

/** A paid store-pickup order shipped by the owner, its shipment created at the sandbox. */
async function shippedPickupOrder(user: string): Promise<{ order: Order; shipment: ShipmentRow }> {
  const order = await paidPickupOrder(shop, user);
  await say(owner, `出貨 ${order.order_no}`);
  return { order, shipment: await createdShipment(order.id) };
}

const pushTexts = (user: string, pred: (t: string) => boolean) => shop.line.textsTo(user).filter(pred);

describe('shipping a store-pickup order', () => {
  it('出貨 sent twice in one webhook body creates exactly one ECPay shipment and tells the owner its drop-off code', async () => {
    const user = newUserId();
    const order = await paidPickupOrder(shop, user);
    const before = creates();
    const e1 = shop.textEvent(owner, `出貨 ${order.order_no}`);
    const e2 = shop.textEvent(owner, `出貨 ${order.order_no}`);
    expect(await shop.sendEvents([e1, e2])).toBe(200);
    await settled(shop, e1.webhookEventId);
    await settled(shop, e2.webhookEventId);
    const s = await createdShipment(order.id);

    expect(creates()).toBe(before + 1);
    expect(await count(shop.c, 'shipments', { order_id: order.id })).toBe(1);
    const atEcpay = shop.logistics.getShipment({ merchantTradeNo: s.merchant_trade_no! })!;
    expect(atEcpay).toBeDefined();
    expect(atEcpay.createFields).toMatchObject({ LogisticsSubType: 'UNIMARTC2C', ReceiverStoreID: '131386', ReceiverName: '王小美', IsCollection: 'N', GoodsAmount: String(order.total) });
    expect(atEcpay.serverReplyUrl).toBe(`${shop.url}/logistics/ecpay/notify`);
    expect(s).toMatchObject({ provider: 'ecpay', status: 'created', logistics_id: atEcpay.allPayLogisticsId, shipment_no: atEcpay.cvsPaymentNo, validation_no: atEcpay.cvsValidationNo });

    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped', tracking_no: atEcpay.cvsPaymentNo });
    const ownerTexts = shop.line.textsTo(owner);
    expect(ownerTexts).toContain(SHIPMENT.creating(order.order_no));
    // The second 出貨 found the first one's shipment (still being created, or created by then).
    const code = `${atEcpay.cvsPaymentNo}${atEcpay.cvsValidationNo}`;
    expect(ownerTexts.filter((t) => t === SHIPMENT.alreadyCreating(order.order_no) || t === SHIPMENT.alreadyCreated(order.order_no, code))).toHaveLength(1);
    const created = ownerTexts.filter((t) => t.includes(`訂單 ${order.order_no} 的超商寄件單已建立`));
    expect(created).toHaveLength(1);
    expect(created[0]).toContain(`到店寄件代碼：${code}`);
    expect(created[0]).toContain('鑫忠孝門市');
    expect(pushTexts(user, (t) => t === T.shippedShopper(order.order_no, atEcpay.cvsPaymentNo))).toHaveLength(1);
    const audits = await db()('audit_log').where({ action: 'order.ship', target_id: order.order_no });
    expect(audits).toHaveLength(1);
    expect(audits[0].after).toMatchObject({ delivery: 'cvs', shipmentId: s.id });

    // Once created, 出貨 answers with the code again and creates nothing.
    await say(owner, `出貨 ${order.order_no}`);
    expect(shop.line.textsTo(owner).at(-1)).toBe(SHIPMENT.alreadyCreated(order.order_no, code));
    expect(creates()).toBe(before + 1);
  });

  it('two 出貨 webhooks at the same moment create exactly one shipment', async () => {
    const user = newUserId();
    const order = await paidPickupOrder(shop, user, { subType: 'FAMIC2C', storeId: '006598', storeName: '全家台北站前店' });
    const before = creates();
    const ids = await Promise.all([shop.say(owner, `出貨 ${order.order_no}`), shop.say(owner, `出貨 ${order.order_no}`)]);
    for (const id of ids) await settled(shop, id);
    const s = await createdShipment(order.id);
    expect(creates()).toBe(before + 1);
    expect(await count(shop.c, 'shipments', { order_id: order.id })).toBe(1);
    expect(shop.logistics.shipments().filter((x) => x.merchantTradeNo === s.merchant_trade_no)).toHaveLength(1);
    // FamilyMart: the drop-off code is CVSPaymentNo alone.
    expect(shop.line.textsTo(owner).filter((t) => t.includes(`到店寄件代碼：${s.shipment_no}\n`))).toHaveLength(1);
  });

  it('a Create that times out is looked up by MerchantTradeNo, not sent again: one shipment at ECPay', async () => {
    const user = newUserId();
    const order = await paidPickupOrder(shop, user);
    const [c0, q0] = [creates(), queries()];
    // The sandbox makes the shipment but answers after the shop's 2 s gateway timeout.
    shop.logistics.injectDelay('/Express/Create', 3500, 1);
    await say(owner, `出貨 ${order.order_no}`);
    const s = await createdShipment(order.id);
    expect(creates()).toBe(c0 + 1);
    expect(queries()).toBeGreaterThan(q0);
    expect(shop.logistics.shipments().filter((x) => x.createFields.ReceiverName === '王小美' && x.merchantTradeNo === s.merchant_trade_no)).toHaveLength(1);
    expect(await count(shop.c, 'shipments', { order_id: order.id })).toBe(1);
    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped' });
    await drained();
    expect(creates()).toBe(c0 + 1);
  });

  it('a Create that never reached ECPay is tried again under a new MerchantTradeNo only after Query says no such trade', async () => {
    const user = newUserId();
    const order = await paidPickupOrder(shop, user);
    const [c0, q0, n0] = [creates(), queries(), shop.logistics.shipments().length];
    // A gateway in front of ECPay answers 502: nothing was created there.
    shop.logistics.injectHttpStatus('/Express/Create', 502, 1);
    await say(owner, `出貨 ${order.order_no}`);
    const s = await createdShipment(order.id);
    const paths = shop.logistics.apiRequests.slice(-10).map((r) => r.path);
    expect(creates()).toBe(c0 + 2);
    expect(queries()).toBe(q0 + 1);
    // The query came between the two creates.
    expect(paths.lastIndexOf('/Helper/QueryLogisticsTradeInfo/V5')).toBeLessThan(paths.lastIndexOf('/Express/Create'));
    expect(shop.logistics.shipments().length).toBe(n0 + 1);
    const atEcpay = shop.logistics.getShipment({ merchantTradeNo: s.merchant_trade_no! })!;
    expect(atEcpay.allPayLogisticsId).toBe(s.logistics_id);
    expect(await count(shop.c, 'shipments', { order_id: order.id })).toBe(1);
    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped' });
  });

  it('a refused Create fails with a clear reason to the owner, and the owner can ship again', async () => {
    const user = newUserId();
    const order = await paidPickupOrder(shop, user, { storeId: '896539', storeName: '港墘門市' });
    shop.logistics.setStoreClosed('UNIMARTC2C', '896539', true);
    try {
      await say(owner, `出貨 ${order.order_no}`);
      await waitFor(async () => (await db()('shipments').where({ order_id: order.id, status: 'failed' }).first()) ?? null, 'shipment failed');
      await drained();
    } finally {
      shop.logistics.setStoreClosed('UNIMARTC2C', '896539', false);
    }
    expect(shop.line.textsTo(owner)).toContain(SHIPMENT.failed(order.order_no, SHIPMENT.reasonStore));
    expect(await orderOf(order.id)).toMatchObject({ status: 'paid' });
    expect(pushTexts(user, (t) => t.includes('出貨'))).toHaveLength(0);

    await say(owner, `出貨 ${order.order_no}`);
    const s = await createdShipment(order.id);
    expect(s.status).toBe('created');
    expect(await db()('shipments').where({ order_id: order.id }).orderBy('id').pluck('status')).toEqual(['failed', 'created']);
    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped' });
  });

  it('a parcel not dropped off in time (7013) ends its shipment; 出貨 then creates a new one for the shipped order', async () => {
    const user = newUserId();
    const { order, shipment } = await shippedPickupOrder(user);
    const expired = signLogistics(
      {
        MerchantID: LOGISTICS_C2C.merchantId, MerchantTradeNo: shipment.merchant_trade_no!, RtnCode: '7013', RtnMsg: '訂單超過驗收期限（賣家未出貨）',
        AllPayLogisticsID: shipment.logistics_id!, LogisticsType: 'CVS', LogisticsSubType: 'UNIMARTC2C', GoodsAmount: String(order.total),
        UpdateStatusDate: formatEcpayDateTime(new Date()), ReceiverName: '王小美', ReceiverPhone: '', ReceiverCellPhone: '0933222111', ReceiverEmail: '',
        ReceiverAddress: '', CVSPaymentNo: shipment.shipment_no!, CVSValidationNo: shipment.validation_no ?? '', BookingNote: '',
      },
      { hashKey: LOGISTICS_C2C.hashKey, hashIv: LOGISTICS_C2C.hashIv },
    );
    const res = await fetch(`${shop.url}/logistics/ecpay/notify`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(expired).toString() });
    expect(await res.text()).toBe('1|OK');
    await drained();
    expect(await db()('shipments').where({ id: shipment.id }).first()).toMatchObject({ status: 'failed', last_rtn_code: '7013' });
    expect(shop.line.textsTo(owner)).toContain(SHIPMENT.failed(order.order_no, SHIPMENT.reasonExpired));
    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped' });

    const c0 = creates();
    await say(owner, `出貨 ${order.order_no}`);
    expect(shop.line.textsTo(owner)).toContain(SHIPMENT.creating(order.order_no));
    const again = await createdShipment(order.id);
    expect(again.id).not.toBe(shipment.id);
    expect(again.merchant_trade_no).not.toBe(shipment.merchant_trade_no);
    expect(creates()).toBe(c0 + 1);
    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped', tracking_no: again.shipment_no });
    expect(shop.line.textsTo(owner).filter((t) => t.includes(`到店寄件代碼：${again.shipment_no}${again.validation_no}`))).toHaveLength(1);
    // The shopper was told "shipped" once, for the first shipment.
    expect(pushTexts(user, (t) => t.startsWith(`你的訂單 ${order.order_no} 已出貨`))).toHaveLength(1);
  });

  it('home delivery keeps the carrier and tracking number, recorded as a shipment', async () => {
    const user = newUserId();
    const order = await paidOrder(shop, user);
    await db()('orders').where({ id: order.id }).update({ delivery_method: 'home', recipient_name: '王小美', recipient_phone: '0933222111', recipient_address: '臺北市中正區重慶南路一段122號' });
    const before = creates();
    await say(owner, `出貨 ${order.order_no} TW123456789`);
    expect(shop.line.textsTo(owner).at(-1)).toBe(T.ownerShipped(order.order_no));
    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped', tracking_no: 'TW123456789' });
    expect(await db()('shipments').where({ order_id: order.id })).toEqual([expect.objectContaining({ provider: 'home', shipment_no: 'TW123456789', status: 'shipped' })]);
    expect(creates()).toBe(before);
  });
});

describe('status notifications', () => {
  it('move the order shipped → at the store → picked up; a notification replayed 5 times moves it once and pushes once', async () => {
    const user = newUserId();
    const { order, shipment } = await shippedPickupOrder(user);
    const id = shipment.logistics_id!;
    await shop.logistics.advance(id, 'next'); // 2068 dropped off
    await shop.logistics.advance(id, 'next'); // 2030 at the warehouse
    const arrived = await shop.logistics.advance(id, 'next'); // 2073 at the store
    expect(arrived.body).toBe('1|OK');
    for (let i = 0; i < 5; i++) expect((await shop.logistics.notifyAgain(id)).body).toBe('1|OK');
    await drained();

    const o = await orderOf(order.id);
    expect(o!.status).toBe('at_store');
    expect(await count(shop.c, 'order_events', { order_id: order.id, to_status: 'at_store' })).toBe(1);
    const arrivedPushes = shop.line.deliveredTo(user).filter((d) => d.kind === 'push' && JSON.stringify(d.messages).includes(SHIPMENT.arrivedTitle));
    expect(arrivedPushes).toHaveLength(1);
    const text = pushTexts(user, (t) => t.startsWith(`你的訂單 ${order.order_no} 已送達`));
    expect(text).toHaveLength(1);
    expect(text[0]).toContain('鑫忠孝門市');
    const s = await db()('shipments').where({ id: shipment.id }).first<ShipmentRow>();
    expect(s).toMatchObject({ status: 'arrived_at_store', last_rtn_code: '2073' });
    const deadline = new Date(s!.pickup_deadline!);
    expect(text[0]).toContain(formatEcpayDateTime(deadline).slice(0, 10));
    expect(await count(shop.c, 'logistics_notifications', { shipment_id: shipment.id, rtn_code: '2073', outcome: 'applied' })).toBe(1);
    expect(await count(shop.c, 'logistics_notifications', { shipment_id: shipment.id, rtn_code: '2073', outcome: 'duplicate' })).toBe(5);

    await shop.logistics.advance(id, 'next'); // 2067 picked up
    await shop.logistics.notifyAgain(id);
    await drained();
    expect(await orderOf(order.id)).toMatchObject({ status: 'completed' });
    expect(pushTexts(user, (t) => t === T.completedShopper(order.order_no))).toHaveLength(1);
    expect(await db()('shipments').where({ id: shipment.id }).first()).toMatchObject({ status: 'picked_up' });
  });

  it('a closed store tells the owner how to go on, who records a new one; an uncollected parcel is returned: shopper and owner told once', async () => {
    const user = newUserId();
    const { order, shipment } = await shippedPickupOrder(user);
    const id = shipment.logistics_id!;
    await shop.logistics.advance(id, 'store-closed'); // 2104
    await drained();
    // The shopper was sent a store-change link (store-change.test.ts); the owner is told so, and may still record a store here.
    expect(shop.line.textsTo(owner).filter((t) => t === SHIPMENT.storeClosedAsked(order.order_no, '鑫忠孝門市'))).toHaveLength(1);
    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped' });

    // The owner records a new store in the back office: ECPay is told (UpdateStoreInfo), the order keeps it.
    const admin = await loggedIn(shop, owner);
    const page = await admin.get(`/admin/orders/${order.order_no}`);
    expect(page.text).toContain('id="store-form"');
    const bad = await admin.post(`/admin/orders/${order.order_no}/store`, { store_id: '12', store_name: '' });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain(SHIPMENT.storeIdInvalid);
    const updates0 = shop.logistics.apiRequests.filter((r) => r.path === '/Express/UpdateStoreInfo').length;
    const ok = await admin.post(`/admin/orders/${order.order_no}/store`, { store_id: '896539', store_name: '港墘門市' });
    expect(ok.status).toBe(303);
    expect((await admin.get(ok.headers.get('location')!)).text).toContain(SHIPMENT.storeUpdated(order.order_no, '港墘門市'));
    expect(shop.logistics.apiRequests.filter((r) => r.path === '/Express/UpdateStoreInfo').length).toBe(updates0 + 1);
    expect(shop.logistics.getShipment({ allPayLogisticsId: id })!.receiverStoreId).toBe('896539');
    expect(await orderOf(order.id)).toMatchObject({ store_id: '896539', store_name: '港墘門市' });
    expect(await db()('audit_log').where({ action: 'order.store', target_id: order.order_no })).toHaveLength(1);
    await drained();
    expect((await admin.get(`/admin/orders/${order.order_no}`)).text).not.toContain('id="store-form"');

    // It reaches the new store, and nobody collects it.
    await shop.logistics.advance(id, 'next'); // 2068 dropped off (the store closed before it was)
    await shop.logistics.advance(id, 'next'); // 2030 warehouse
    await shop.logistics.advance(id, 'next'); // 2073 at the new store
    await drained();
    expect(pushTexts(user, (t) => t.startsWith(`你的訂單 ${order.order_no} 已送達「港墘門市」`))).toHaveLength(1);
    await shop.logistics.advance(id, 'return'); // 2074 not collected
    await shop.logistics.notifyAgain(id);
    await drained();
    expect(await orderOf(order.id)).toMatchObject({ status: 'returned' });
    expect(pushTexts(user, (t) => t === SHIPMENT.returned(order.order_no))).toHaveLength(1);
    expect(shop.line.textsTo(owner).filter((t) => t === SHIPMENT.returnedOwner(order.order_no, '港墘門市'))).toHaveLength(1);
    await shop.logistics.advance(id, 'next'); // 2072 back at the sender's store: still returned, nothing new
    await drained();
    expect(pushTexts(user, (t) => t === SHIPMENT.returned(order.order_no))).toHaveLength(1);
  });

  it('a tampered notification (bad MAC, another merchant, unknown shipment) changes nothing and is recorded as rejected', async () => {
    const user = newUserId();
    const { order, shipment } = await shippedPickupOrder(user);
    const fields = {
      MerchantID: LOGISTICS_C2C.merchantId,
      MerchantTradeNo: shipment.merchant_trade_no!,
      RtnCode: '2073',
      RtnMsg: '包裹配達取件門市',
      AllPayLogisticsID: shipment.logistics_id!,
      LogisticsType: 'CVS',
      LogisticsSubType: 'UNIMARTC2C',
      GoodsAmount: String(order.total),
      UpdateStatusDate: formatEcpayDateTime(new Date()),
      ReceiverName: '王小美',
      ReceiverPhone: '',
      ReceiverCellPhone: '0933222111',
      ReceiverEmail: '',
      ReceiverAddress: '',
      CVSPaymentNo: shipment.shipment_no!,
      CVSValidationNo: shipment.validation_no ?? '',
      BookingNote: '',
    };
    const keys = { hashKey: LOGISTICS_C2C.hashKey, hashIv: LOGISTICS_C2C.hashIv };
    const good = signLogistics(fields, keys);
    const tampered = [
      { ...good, RtnCode: '2067' }, // MAC no longer matches
      signLogistics({ ...fields }, { hashKey: '5294y06JbISpM5x9', hashIv: 'v77hoKGq4kWxNNIS' }), // someone else's keys
      signLogistics({ ...fields, MerchantID: '2000132' }, keys), // another merchant
      signLogistics({ ...fields, AllPayLogisticsID: '99999999', MerchantTradeNo: 'LSNOSUCHSHIPMENT' }, keys), // not ours
    ];
    const [events0, outbox0, rejected0] = [
      await count(shop.c, 'order_events', { order_id: order.id }),
      await count(shop.c, 'outbox_messages'),
      await count(shop.c, 'logistics_notifications', { outcome: 'rejected' }),
    ];
    const shipmentBefore = await db()('shipments').where({ id: shipment.id }).first();
    for (const body of tampered) {
      const res = await fetch(`${shop.url}/logistics/ecpay/notify`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body).toString(),
      });
      expect(res.status).toBe(400);
      expect(await res.text()).toMatch(/^0\|/);
    }
    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped' });
    expect(await count(shop.c, 'order_events', { order_id: order.id })).toBe(events0);
    expect(await count(shop.c, 'outbox_messages')).toBe(outbox0);
    expect(await db()('shipments').where({ id: shipment.id }).first()).toEqual(shipmentBefore);
    expect(await count(shop.c, 'logistics_notifications', { outcome: 'rejected' })).toBe(rejected0 + 4);
    const reasons = await db()('logistics_notifications').where({ outcome: 'rejected' }).orderBy('id', 'desc').limit(4).pluck('reason');
    expect(reasons.sort()).toEqual(['BAD_MAC', 'BAD_MAC', 'UNKNOWN_SHIPMENT', 'WRONG_MERCHANT']);

    // The genuine one is accepted, answered exactly 1|OK.
    const res = await fetch(`${shop.url}/logistics/ecpay/notify`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(good).toString(),
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('1|OK');
    expect(await orderOf(order.id)).toMatchObject({ status: 'at_store' });
  });
});

describe('logistics reconciliation', () => {
  it('picks up statuses ECPay never notified, through the same path (once)', async () => {
    const user = newUserId();
    const { order, shipment } = await shippedPickupOrder(user);
    const id = shipment.logistics_id!;
    shop.logistics.advanceSilently(id, 'next'); // 2068
    shop.logistics.advanceSilently(id, 'next'); // 2030
    shop.logistics.advanceSilently(id, 'next'); // 2073 at the store, never told
    await drained();
    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped' });
    // Nothing from ECPay for longer than LOGISTICS_RECONCILE_AFTER_MINUTES (240).
    const quiet = () => db()('shipments').where({ id: shipment.id }).update({ last_checked_at: db().raw("now() - interval '5 hours'"), status_at: db().raw("now() - interval '5 hours'") });
    await quiet();
    const q0 = queries();
    await shop.c.shipments.reconcileSweep();
    expect(queries()).toBe(q0 + 1); // only this shipment had no news for that long
    await drained();
    expect(await orderOf(order.id)).toMatchObject({ status: 'at_store' });
    expect(await db()('shipments').where({ id: shipment.id }).first()).toMatchObject({ status: 'arrived_at_store', last_rtn_code: '2073' });
    expect(pushTexts(user, (t) => t.startsWith(`你的訂單 ${order.order_no} 已送達`))).toHaveLength(1);

    // Asking again finds nothing new; the real notification arriving late changes nothing either.
    await quiet();
    await shop.c.shipments.reconcileSweep();
    await shop.logistics.notifyAgain(id);
    await drained();
    expect(await count(shop.c, 'order_events', { order_id: order.id, to_status: 'at_store' })).toBe(1);
    expect(pushTexts(user, (t) => t.startsWith(`你的訂單 ${order.order_no} 已送達`))).toHaveLength(1);
  });

  it('resolves a creation whose outcome stayed unknown without creating it twice', async () => {
    const user = newUserId();
    const order = await paidPickupOrder(shop, user);
    // Both the Create answer and the query after it are lost: the outcome stays unknown.
    shop.logistics.injectDelay('/Express/Create', 3500, 1);
    shop.logistics.injectHttpStatus('/Helper/QueryLogisticsTradeInfo/V5', 503, 1);
    const c0 = creates();
    await say(owner, `出貨 ${order.order_no}`);
    await waitFor(async () => shop.line.textsTo(owner).includes(SHIPMENT.unknown(order.order_no)) || null, 'owner told the outcome is unknown');
    // The creation status notification may have told us meanwhile; if not, the sweep asks.
    await db()('shipments').where({ order_id: order.id }).update({ last_checked_at: db().raw("now() - interval '2 minutes'") });
    await shop.c.shipments.reconcileSweep();
    const s = await createdShipment(order.id);
    expect(s.status).toBe('created');
    expect(creates()).toBe(c0 + 1);
    expect(await count(shop.c, 'shipments', { order_id: order.id })).toBe(1);
    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped' });
  });

  it('an unknown creation is asked about again by its own job soon after, not only by the sweep', async () => {
    const user = newUserId();
    const order = await paidPickupOrder(shop, user);
    shop.logistics.injectDelay('/Express/Create', 3500, 1);
    shop.logistics.injectHttpStatus('/Helper/QueryLogisticsTradeInfo/V5', 503, 1);
    const c0 = creates();
    await say(owner, `出貨 ${order.order_no}`);
    await waitFor(async () => shop.line.textsTo(owner).includes(SHIPMENT.unknown(order.order_no)) || null, 'owner told the outcome is unknown');
    // No sweep here: the job's retry (about 10 s later) queries ECPay, which has the shipment.
    await waitFor(
      async () => !['creating', 'unknown'].includes((await db()('shipments').where({ order_id: order.id }).first('status')).status) || null,
      'the job finds the shipment at ECPay',
      30_000,
    );
    const s = await createdShipment(order.id);
    expect(s.status).toBe('created');
    expect(creates()).toBe(c0 + 1);
    expect(await count(shop.c, 'shipments', { order_id: order.id })).toBe(1);
    expect(await orderOf(order.id)).toMatchObject({ status: 'shipped' });
  });
});

describe('back office', () => {
  it('shows the delivery section and ships a store-pickup order with its 出貨 button, through the same use case', async () => {
    const admin = await loggedIn(shop, owner);
    const user = newUserId();
    const order = await paidPickupOrder(shop, user);
    const before = await admin.get(`/admin/orders/${order.order_no}`);
    expect(before.status).toBe(200);
    expect(before.text).toContain(SHIPMENT.cvs('7-ELEVEN'));
    expect(before.text).toContain('王小美');
    expect(before.text).toContain('0933***111');
    expect(before.text).not.toContain('0933222111');
    expect(before.text).toContain('鑫忠孝門市 (131386)');
    expect(before.text).toContain('id="ship-cvs-form"');
    // No carrier or tracking fields for store pickup.
    expect(before.text).not.toContain('id="ship-form"');

    const c0 = creates();
    const res = await admin.post(`/admin/orders/${order.order_no}/ship`, {});
    expect(res.status).toBe(303);
    expect((await admin.get(res.headers.get('location')!)).text).toContain(SHIPMENT.creating(order.order_no));
    const s = await createdShipment(order.id);
    expect(creates()).toBe(c0 + 1);
    // The label, printed at home instead of at the kiosk: our page posts the signed print form to ECPay.
    const created = await admin.get(`/admin/orders/${order.order_no}`);
    expect(created.text).toContain(`href="/admin/orders/${order.order_no}/label"`);
    const label = await admin.get(`/admin/orders/${order.order_no}/label`);
    expect(label.status).toBe(200);
    expect(label.headers.get('content-security-policy')).toContain(`form-action ${shop.logistics.url}`);
    const action = /<form id="ecpay-print" method="post" action="([^"]*)"/.exec(label.text)![1]!;
    expect(action).toBe(`${shop.logistics.url}/Express/PrintUniMartC2COrderInfo`);
    const fields = Object.fromEntries([...label.text.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!]));
    const printed = await fetch(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
    expect(printed.status).toBe(200);
    expect(await printed.text()).toContain(s.shipment_no!);
    expect((await fetch(`${shop.url}/admin/orders/${order.order_no}/label`)).status).toBe(401);

    await shop.logistics.advance(s.logistics_id!, 'next'); // 2068 dropped off
    await drained();

    const after = await admin.get(`/admin/orders/${order.order_no}`);
    const code = `${s.shipment_no}${s.validation_no}`;
    expect(after.text).toContain(`<code class="drop-off-code">${code}</code>`);
    expect(after.text).toContain(`<code>${s.shipment_no}</code>`);
    expect(after.text).toContain('2068 賣家已到門市寄件');
    expect(after.text).toContain(SHIPMENT.status.shipped!);
    expect(after.text).not.toContain('id="ship-cvs-form"');
    expect(after.text).not.toContain('id="print-label"');
    const audits = await db()('audit_log').where({ action: 'order.ship', target_id: order.order_no });
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({ source: 'web', actor: `owner:${owner}` });
  });
});

describe('afterwards', () => {
  it('the database invariants hold for every order shipped, picked up or returned above', async () => {
    expect(await count(shop.c, 'orders', { status: 'at_store' })).toBeGreaterThan(0);
    expect(await count(shop.c, 'orders', { status: 'returned' })).toBeGreaterThan(0);
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});
