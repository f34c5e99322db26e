import crypto from 'node:crypto';
import type { Order } from '../../src/domain/orders';
import type { PaymentAttempt } from '../../src/domain/payments';
import { silentLogger } from '../../src/logger';
import { DevSandbox, DEV_SECRETS, startDevSandbox } from '../../src/sandbox/dev-sandbox';
import { SHIPMENT } from '../../src/texts';
import { completeDelivery } from '../helpers/orders';
import { newEventId, waitFor } from '../helpers/shop';
import { createTestDb, dropQueueKeys, TestDb, testQueuePrefix } from '../helpers/test-db';

/**
 * `npm run dev` wiring: a store-pickup order shipped in the sandbox is created at the local ECPay
 * logistics sandbox, and that sandbox's own buttons (POST /sandbox/shipments/:id/next, as its index
 * page posts them) move the order along and push the shopper.
 */
describe('store pickup in the development sandbox', () => {
  let tdb: TestDb;
  let sandbox: DevSandbox;
  const queuePrefix = testQueuePrefix('dev_pickup');

  beforeAll(async () => {
    tdb = await createTestDb('dev_pickup');
    sandbox = await startDevSandbox({ databaseUrl: tdb.url, port: 0, queuePrefix, log: silentLogger });
  });
  afterAll(async () => {
    await sandbox?.close();
    await tdb?.destroy();
    await dropQueueKeys(queuePrefix, 'redis://127.0.0.1:6379');
  });

  const db = () => sandbox.container.db;

  async function send(userId: string, event: Record<string, unknown>): Promise<void> {
    const e = { mode: 'active', timestamp: Date.now(), source: { type: 'user', userId }, webhookEventId: newEventId(), deliveryContext: { isRedelivery: false }, replyToken: sandbox.line.issueReplyToken(userId), ...event };
    const body = JSON.stringify({ destination: 'U0123456789abcdef0123456789abcdef', events: [e] });
    const signature = crypto.createHmac('sha256', DEV_SECRETS.channelSecret).update(body).digest('base64');
    const res = await fetch(`${sandbox.shopUrl}/webhook/line`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-line-signature': signature }, body });
    expect(res.status).toBe(200);
    await waitFor(async () => (await db()('line_events').where({ webhook_event_id: e.webhookEventId }).first('processed_at'))?.processed_at ?? null, 'event processed');
  }
  const say = (userId: string, text: string) => send(userId, { type: 'message', message: { type: 'text', id: String(Date.now()), quoteToken: 'q', text } });
  const tap = (userId: string, data: string) => send(userId, { type: 'postback', postback: { data } });

  it('ships through the logistics sandbox, whose buttons move the order to the store and push the shopper', async () => {
    const shopper = DEV_SECRETS.shopper;
    await say(shopper, 'cart TEA-001 1');
    await say(shopper, '結帳');
    const order = (await db()('orders').where({ line_user_id: shopper }).orderBy('id', 'desc').first<Order>())!;
    // Store pickup at 全家, completed through checkout's delivery use case (the map reply's end).
    await completeDelivery({ c: sandbox.container }, order, {
      method: 'cvs', subType: 'FAMIC2C', recipientName: '王小美', recipientPhone: '0933222111', recipientZip: null, recipientAddress: null,
      storeId: '006598', storeName: '全家台北站前店', storeAddress: '臺北市中正區館前路8號', storeOutside: false,
    });
    await tap(shopper, `action=pay&o=${order.order_no}&m=sinopac-atm`);
    const attempt = (await db()('payment_attempts').where({ order_id: order.id }).first<PaymentAttempt>())!;
    await sandbox.sinopac.payAtm(attempt.trade_no).delivered;
    await waitFor(async () => ((await db()('orders').where({ id: order.id }).first<Order>())!.status === 'paid') || null, 'order paid');

    await say(DEV_SECRETS.owner, `出貨 ${order.order_no}`);
    const s = await waitFor(async () => {
      const row = await db()('shipments').where({ order_id: order.id, status: 'created' }).first();
      return row ?? null;
    }, 'shipment created at the logistics sandbox');
    expect(sandbox.ecpayLogistics.getShipment({ allPayLogisticsId: s.logistics_id })).toMatchObject({ receiverStoreId: '006598', subType: 'FAMIC2C' });

    // The index page's "next" button, three times: dropped off, at the warehouse, at the store.
    const index = await (await fetch(`${sandbox.ecpayLogistics.url}/`)).text();
    expect(index).toContain(`/sandbox/shipments/${s.logistics_id}/next`);
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${sandbox.ecpayLogistics.url}/sandbox/shipments/${s.logistics_id}/next`, { method: 'POST', redirect: 'manual' });
      expect(res.status).toBe(303);
    }
    await sandbox.ecpayLogistics.idle();
    await waitFor(async () => ((await db()('orders').where({ id: order.id }).first<Order>())!.status === 'at_store') || null, 'order at the store');
    await waitFor(() => sandbox.line.textsTo(shopper).some((t) => t.startsWith(`你的訂單 ${order.order_no} 已送達「全家台北站前店」`)) || null, 'shopper told');
    expect(sandbox.line.textsTo(DEV_SECRETS.owner).some((t) => t.includes(SHIPMENT.createdTitle) || t.includes(`訂單 ${order.order_no} 的超商寄件單已建立`))).toBe(true);
  });
});
