import { post } from '../../src/domain/members/ledger';
import type { InjectedFailure } from '../../src/sandbox/line-api-double';
import { newUserId, TestEvent } from '../helpers/shop';
import {
  attemptOf,
  errorLines,
  chooseHomeDelivery,
  counterSum,
  expectExactlyOnce,
  expectInvariants,
  expectPaidOnce,
  expectStock,
  payAtBank,
  ProcessedWatcher,
  ProcShop,
  quiescent,
  seededRandom,
  Shopper,
  sleep,
  startProcShop,
  summary,
} from '../helpers/procs';

/**
 * Several processes of the real entry points (built dist/) on one PostgreSQL database and one Redis
 * prefix, fed by signed webhooks posted to the web processes, counted at the LINE API double.
 * Seeded: `PROCS_SEED=<n>` repeats a run's choices (which web, which product, which replays).
 */
const SEED = Number(process.env.PROCS_SEED ?? Math.floor(Math.random() * 2 ** 31));
jest.setTimeout(150_000);

const METHODS = ['sinopac-atm', 'sinopac-card', 'ecpay-credit', 'ecpay-cvs', 'ecpay-atm', 'wallet'] as const;

beforeAll(() => {
  // eslint-disable-next-line no-console
  console.log(`multi-process: seed ${SEED} (PROCS_SEED=${SEED} repeats this run)`);
});

describe('2 web and 2 worker processes, shoppers paying by every method', () => {
  const OWNER = newUserId();
  const STOCK = { 'TEA-001': 30, 'SNK-001': 40, 'SNK-002': 35, 'GDS-003': 3, 'SNK-003': 5 };
  let shop: ProcShop;
  beforeAll(async () => {
    shop = await startProcShop({ label: 'two_by_two', webs: 2, workers: 2, owner: OWNER, stock: STOCK });
  });
  afterAll(async () => {
    await shop?.close();
  });

  test('every event answered once, every payment confirmed once, replays and redeliveries change nothing, stock right, invariants hold', async () => {
    const started = Date.now();
    const rnd = seededRandom(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const watcher = new ProcessedWatcher(shop);
    const web = () => Math.floor(rnd() * 2);
    const db = shop.tdb.db;

    // 4 payers per method (24), and 12 shoppers who want the last units of two scarce products.
    const payers = METHODS.flatMap((m) => Array.from({ length: 4 }, () => ({ method: m, sku: pick(['TEA-001', 'SNK-001', 'SNK-002']), replay: rnd() < 0.5 })));
    const rivals = Array.from({ length: 12 }, () => ({ sku: pick(['GDS-003', 'SNK-003']), qty: 1 + Math.floor(rnd() * 2) }));
    const paid: Array<{ user: string; orderNo: string }> = [];
    const shoppers: Shopper[] = [];
    const redeliveries: Array<Promise<number>> = [];
    let replays = 0;
    const redeliverSoon = (s: Shopper, e: TestEvent) => {
      // To the other web process, at once or a little later.
      redeliveries.push(sleep(Math.floor(rnd() * 1500)).then(() => s.redeliver(e, web())));
    };

    const payerRuns = payers.map(async (p, i) => {
      const s = new Shopper(newUserId(), shop, watcher, web);
      shoppers.push(s);
      await sleep(Math.floor(rnd() * 3000));
      if (p.method === 'wallet') {
        await db('line_users').insert({ user_id: s.user }).onConflict('user_id').ignore();
        const r = await post(db, { userId: s.user, account: 'wallet', kind: 'adjust', amount: 2000, source: `test:wallet-${s.user}` });
        if (r.outcome !== 'posted') throw new Error('wallet credit not posted');
      }
      await s.say('商品');
      redeliverSoon(s, s.events[0]!);
      await s.say(`cart ${p.sku} 1`);
      await s.say('結帳');
      const order = await s.latestOrder();
      if (order?.status !== 'pending_payment') throw new Error(`payer ${i}: no order`);
      await chooseHomeDelivery(shop, s, order.order_no);
      if (p.method === 'wallet') {
        // A double tap, each on another web process at once: one payment.
        const [a, b] = [shop.postbackEvent(s.user, `action=pay&o=${order.order_no}&m=wallet`), shop.postbackEvent(s.user, `action=pay&o=${order.order_no}&m=wallet`)];
        await Promise.all([s.deliver(a), s.deliver(b)]);
        redeliverSoon(s, a);
      } else {
        const tap = await s.tap(`action=pay&o=${order.order_no}&m=${p.method}`);
        redeliverSoon(s, s.events.at(-1)!);
        const attempt = await attemptOf(shop, tap);
        if (!attempt) throw new Error(`payer ${i}: no ${p.method} attempt`);
        const tradeNo = await payAtBank(shop, attempt, web());
        if (p.replay) {
          replays++;
          if (p.method.startsWith('sinopac')) {
            if (!(await shop.sinopac.notifyAgain(tradeNo).delivered)) throw new Error('SinoPac replay not delivered');
          } else {
            await shop.ecpay.notifyAgain(tradeNo);
          }
        }
      }
      paid.push({ user: s.user, orderNo: order.order_no });
      await s.say('訂單');
    });
    const rivalRuns = rivals.map(async (r) => {
      const s = new Shopper(newUserId(), shop, watcher, web);
      shoppers.push(s);
      await sleep(Math.floor(rnd() * 3000));
      await s.say('商品');
      await s.say(`cart ${r.sku} ${r.qty}`);
      await s.say('結帳');
      redeliverSoon(s, s.events.at(-1)!);
      await s.say('購物車');
    });
    await Promise.all([...payerRuns, ...rivalRuns]);
    expect((await Promise.all(redeliveries)).every((st) => st === 200)).toBe(true);
    await quiescent(shop, 60_000);
    await sleep(2000);
    watcher.stop();

    const events = shoppers.flatMap((s) => s.events);
    const counts = await expectExactlyOnce(shop, events);
    await expectPaidOnce(shop, paid, OWNER);
    await expectStock(shop, STOCK);
    // Every method paid its 4 orders; wallets were debited once each.
    const byMethod = await db('orders').where({ status: 'paid' }).groupBy('payment_method').select('payment_method').count<Array<{ payment_method: string; n: string }>>({ n: '*' });
    expect(Object.fromEntries(byMethod.map((r) => [r.payment_method, Number(r.n)]))).toEqual(Object.fromEntries(METHODS.map((m) => [m, 4])));
    const walletDebits = await db('member_ledger as e').join('member_accounts as a', 'a.id', 'e.account_id').where({ 'a.kind': 'wallet' }).whereNot('e.kind', 'adjust').count<{ n: number }[]>({ n: '*' });
    expect(Number(walletDebits[0]!.n)).toBe(4);
    // Both web processes took webhooks, both workers delivered messages.
    for (const w of shop.webs) expect({ web: w.url, answered: (await counterSum(w.url, 'lineshop_webhook_requests_total', 'status="200"')) > 10 }).toEqual({ web: w.url, answered: true });
    for (const u of shop.workerMetricsUrls) expect({ worker: u, sent: (await counterSum(u, 'lineshop_line_deliveries_total', 'result="sent"')) > 10 }).toEqual({ worker: u, sent: true });
    const oversold = await db('product_stock').where('stock_on_hand', '<', 0).count<{ n: number }[]>({ n: '*' });
    expect(Number(oversold[0]!.n)).toBe(0);
    expectInvariants(shop);
    // eslint-disable-next-line no-console
    console.log(
      `multi-process 2×2 (seed ${SEED}): ${counts.events} events (${redeliveries.length} redelivered), ${paid.length} orders paid ` +
        `(${replays} bank callbacks replayed), ${counts.replies} replies + ${counts.pushes} pushes; ${Date.now() - started} ms; process error logs: ${summary(errorLines(shop))}`,
    );
  });
});

describe('the LINE API answering 429 (Retry-After), 500 and timeouts for a while, under traffic, 1 web and 2 worker processes', () => {
  const OWNER = newUserId();
  const STOCK = { 'TEA-001': 100, 'SNK-001': 100 };
  let shop: ProcShop;
  beforeAll(async () => {
    shop = await startProcShop({ label: 'line_faults', webs: 1, workers: 2, owner: OWNER, stock: STOCK });
  });
  afterAll(async () => {
    await shop?.close();
  });

  test('every message is delivered once, every try of a push under one retry key; invariants hold', async () => {
    const started = Date.now();
    const rnd = seededRandom(SEED + 1);
    const watcher = new ProcessedWatcher(shop);
    const SHOPPERS = 20;
    // The failures LINE answers with "for a while": the next requests to each endpoint get them in turn.
    const faults = (n: number, hangs: number): InjectedFailure[] => {
      const list: InjectedFailure[] = [];
      for (let i = 0; i < n; i++) {
        const r = rnd();
        list.push(r < 0.45 ? { status: 429, headers: { 'retry-after': '1' } } : r < 0.9 ? { status: 500 } : { status: 503 });
      }
      // Timeouts: LINE took the message, its answer outlives the worker's 10 s timeout.
      for (let i = 0; i < hangs; i++) list.splice(Math.floor(rnd() * list.length), 0, { hangMs: 11_000 });
      return list;
    };
    const replyFaults = faults(25, 2);
    const pushFaults = faults(25, 3);
    const paid: Array<{ user: string; orderNo: string }> = [];
    const shoppers = Array.from({ length: SHOPPERS }, () => new Shopper(newUserId(), shop, watcher));
    let injected = false;
    const runs = shoppers.map(async (s, i) => {
      await sleep(Math.floor(rnd() * 4000));
      await s.say('商品');
      if (!injected) {
        injected = true;
        shop.line.injectFailures('/v2/bot/message/reply', replyFaults);
        shop.line.injectFailures('/v2/bot/message/push', pushFaults);
      }
      await s.say(`cart ${i % 2 ? 'TEA-001' : 'SNK-001'} 1`);
      await s.say('結帳');
      const order = await s.latestOrder();
      if (order?.status !== 'pending_payment') throw new Error(`shopper ${i}: no order`);
      await chooseHomeDelivery(shop, s, order.order_no);
      const tap = await s.tap(`action=pay&o=${order.order_no}&m=sinopac-atm`);
      const attempt = await attemptOf(shop, tap);
      if (!attempt) throw new Error(`shopper ${i}: no attempt`);
      await payAtBank(shop, attempt);
      paid.push({ user: s.user, orderNo: order.order_no });
      await s.say('help');
    });
    await Promise.all(runs);
    await quiescent(shop, 90_000);
    await sleep(2000);
    watcher.stop();

    // Every injected failure was met.
    const reqs = shop.line.requests;
    const answered = (p: string, st: number) => reqs.filter((r) => r.path === p && r.status === st).length;
    for (const p of ['/v2/bot/message/reply', '/v2/bot/message/push']) {
      const list = p.endsWith('reply') ? replyFaults : pushFaults;
      const want = (st: number) => list.filter((f) => 'status' in f && f.status === st).length;
      expect({ p, s429: answered(p, 429) >= want(429), s500: answered(p, 500) >= want(500), s503: answered(p, 503) >= want(503) }).toEqual({ p, s429: true, s500: true, s503: true });
    }
    const events = shoppers.flatMap((s) => s.events);
    const counts = await expectExactlyOnce(shop, events);
    await expectPaidOnce(shop, paid, OWNER);
    await expectStock(shop, STOCK);
    expectInvariants(shop);
    // eslint-disable-next-line no-console
    console.log(
      `LINE faults (seed ${SEED}): ${counts.events} events, ${paid.length} paid; LINE answered ` +
        `${reqs.filter((r) => r.status === 429).length}×429, ${reqs.filter((r) => r.status >= 500).length}×5xx, ${replyFaults.length + pushFaults.length - 50} timeouts; ` +
        `${counts.replies} replies + ${counts.pushes} pushes accepted; ${Date.now() - started} ms; process error logs: ${summary(errorLines(shop))}`,
    );
  });
});
