import type { ChildProcess } from 'node:child_process';
import { freePort } from '../helpers/child-process';
import { newUserId, TestEvent, waitFor } from '../helpers/shop';
import {
  attemptOf,
  errorLines,
  chooseHomeDelivery,
  payAtBank,
  expectExactlyOnce,
  expectInvariants,
  expectPaidOnce,
  expectStock,
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
 * The worker SIGKILLed 20 times at random moments while shoppers use the shop through the real web
 * process: 300 shopper events (50 shoppers × 6, plus LINE's redeliveries of some; payers choose home
 * delivery in the chat and save it on the delivery page), 50 checkouts and
 * 30 bank notifications (25 payments by SinoPac ATM, SinoPac card and ECPay card in turn, 5 of them
 * notified again). After each kill a new
 * worker starts. Afterwards: every event answered exactly once, every payment confirmed once, every
 * push sent once (by retry key and by content), stock right, invariants clean.
 *
 * The moments are seeded: `KILL_SEED=<n> npx jest test/integration/worker-kills.test.ts` repeats a run.
 */
const SEED = Number(process.env.KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));
const KILLS = 20;
const SHOPPERS = 50;
const PAYERS = 25;
const REPLAYS = 5;
/** The payers' methods in turn: each payment is one notification (BackendURL / ReturnURL). */
const PAY_METHODS = ['sinopac-atm', 'sinopac-card', 'ecpay-credit'] as const;
const OWNER = newUserId();
// Plenty for the 25 payers (1–2 each); the other 25 fight over 8 units.
const STOCK = { 'TEA-001': 30, 'SNK-001': 40, 'SNK-002': 35, 'GDS-003': 3, 'SNK-003': 5 };
const PLENTY = ['TEA-001', 'SNK-001', 'SNK-002'];
const SCARCE = ['GDS-003', 'SNK-003'];

jest.setTimeout(170_000);

describe('a worker SIGKILLed 20 times under shopper traffic', () => {
  let shop: ProcShop;
  beforeAll(async () => {
    // eslint-disable-next-line no-console
    console.log(`worker-kills: seed ${SEED} (KILL_SEED=${SEED} repeats this run)`);
    shop = await startProcShop({ label: 'worker_kills', webs: 1, workers: 1, owner: OWNER, stock: STOCK });
  });
  afterAll(async () => {
    await shop?.close();
  });

  test('every event answered once, every payment confirmed once, every push sent once, stock right, invariants hold', async () => {
    const started = Date.now();
    const rnd = seededRandom(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const between = (a: number, b: number) => a + Math.floor(rnd() * (b - a));
    const watcher = new ProcessedWatcher(shop);

    // The plan of every shopper and of every kill is drawn up front, so the seed alone fixes them.
    const plans = Array.from({ length: SHOPPERS }, (_, i) => ({
      startMs: between(0, 30_000),
      thinkMs: Array.from({ length: 6 }, () => between(100, 1200)),
      sku: i < PAYERS ? pick(PLENTY) : pick(SCARCE),
      qty: between(1, 3),
      redeliverStep: between(0, 6),
      redeliverAtOnce: rnd() < 0.5,
    }));
    // Every kill comes a random time after its worker is up; every other one then also waits (up to
    // 3 s) until there is work in flight, so at least half of them interrupt something.
    const killAfterMs = Array.from({ length: KILLS }, () => between(500, 2500));

    let current: ChildProcess = shop.workers[0]!;
    let kills = 0;
    let killsWithWorkInFlight = 0;
    let flowDone = false;
    const inFlight = async () => {
      const db = shop.tdb.db;
      const [e] = await db('line_events').whereNull('processed_at').count<{ n: number }[]>({ n: '*' });
      const [o] = await db('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
      const [b] = await db('payment_notifications').whereNull('processed_at').count<{ n: number }[]>({ n: '*' });
      return Number(e!.n) + Number(o!.n) + Number(b!.n);
    };
    // A worker is killed while it runs: the random time counts from when it is up (its metrics
    // port answers), as a crash hits a running process.
    let currentMetrics = shop.workerMetricsUrls[0]!;
    const up = (url: string) => waitFor(() => fetch(`${url}/metrics`).then((r) => r.ok, () => false), `worker ${url} up`, 30_000);
    const killer = (async () => {
      for (const [n, ms] of killAfterMs.entries()) {
        await up(currentMetrics);
        await sleep(ms);
        let busy = (await inFlight()) > 0;
        for (const until = Date.now() + 3000; n % 2 === 0 && !busy && Date.now() < until; ) {
          await sleep(20);
          busy = (await inFlight()) > 0;
        }
        await shop.kill(current);
        if (busy) killsWithWorkInFlight++;
        kills++;
        const port = await freePort();
        current = shop.startWorker(undefined, port);
        currentMetrics = `http://127.0.0.1:${port}`;
      }
    })();

    const paid: Array<{ user: string; orderNo: string }> = [];
    let notifications = 0;
    let checkouts = 0;
    const redeliveries: Array<Promise<number>> = [];
    const shoppers = plans.map(() => new Shopper(newUserId(), shop, watcher));
    const flow = Promise.all(
      shoppers.map(async (s, i) => {
        const p = plans[i]!;
        await sleep(p.startMs);
        const step = async (n: number, act: () => Promise<string>) => {
          await sleep(p.thinkMs[n]!);
          const id = await act();
          if (n === p.redeliverStep) {
            const e = s.events.find((x) => x.webhookEventId === id)!;
            // LINE redelivers: at once (racing the first delivery's processing) or later.
            if (p.redeliverAtOnce) redeliveries.push(s.redeliver(e));
            else redeliveries.push(sleep(2000).then(() => s.redeliver(e)));
          }
        };
        await step(0, () => s.say('商品'));
        await step(1, () => s.say(`cart ${p.sku} ${p.qty}`));
        await step(2, () => s.say('結帳'));
        checkouts++;
        const order = await s.latestOrder();
        if (i < PAYERS) {
          if (!order || order.status !== 'pending_payment') throw new Error(`shopper ${i}: checkout of ${p.sku} × ${p.qty} made no order`);
          // Home delivery through the chat and the delivery page (payment methods come after it).
          await step(3, async () => {
            await chooseHomeDelivery(shop, s, order.order_no);
            return s.events.at(-1)!.webhookEventId;
          });
          let eventId = '';
          const method = PAY_METHODS[i % PAY_METHODS.length]!;
          await step(4, async () => (eventId = await s.tap(`action=pay&o=${order.order_no}&m=${method}`)));
          const attempt = await attemptOf(shop, eventId);
          if (!attempt) throw new Error(`shopper ${i}: no ${method} attempt`);
          const tradeNo = await payAtBank(shop, attempt);
          notifications++;
          paid.push({ user: s.user, orderNo: order.order_no });
          if (i < REPLAYS) {
            // The bank notifies once more (a replay), while the worker may be down.
            if (method.startsWith('sinopac')) {
              if (!(await shop.sinopac.notifyAgain(tradeNo).delivered)) throw new Error('SinoPac could not notify again');
            } else {
              await shop.ecpay.notifyAgain(tradeNo);
            }
            notifications++;
          }
        } else {
          await step(3, () => s.say('購物車'));
          await step(4, () => s.say('訂單'));
        }
        await step(5, () => s.say('help'));
      }),
    ).finally(() => (flowDone = true));

    await Promise.all([killer, flow]);
    const redelivered = await Promise.all(redeliveries);
    expect(redelivered.every((st) => st === 200)).toBe(true);
    const flowMs = Date.now() - started;
    const settle = await quiescent(shop, 100_000);
    // Anything sent twice (a job run again after its worker died) would arrive now.
    await sleep(2000);
    watcher.stop();

    const events: TestEvent[] = shoppers.flatMap((s) => s.events);
    // The kills met work: events, messages or bank notifications not yet done when the worker died.
    expect(killsWithWorkInFlight).toBeGreaterThanOrEqual(KILLS / 2);
    expect({ kills, flowDone, events: events.length, checkouts, notifications, paid: paid.length }).toEqual({
      kills: KILLS, flowDone: true, events: SHOPPERS * 6, checkouts: SHOPPERS, notifications: PAYERS + REPLAYS, paid: PAYERS,
    });
    const counts = await expectExactlyOnce(shop, events);
    await expectPaidOnce(shop, paid, OWNER);
    await expectStock(shop, STOCK);
    const viaPush = Number((await shop.tdb.db('outbox_messages').where({ delivered_via: 'push' }).whereLike('dedupe_key', 'event:%').count<{ n: number }[]>({ n: '*' }))[0]!.n);
    // Answered in time for the reply token: a dead worker's event jobs are back within seconds.
    expect(viaPush).toBe(0);
    expectInvariants(shop);
    // eslint-disable-next-line no-console
    console.log(
      `worker-kills (seed ${SEED}): ${kills} kills (${killsWithWorkInFlight} with work in flight), ${counts.events} events (${redeliveries.length} redelivered), ${checkouts} checkouts, ` +
        `${notifications} bank notifications; ${counts.replies} replies + ${counts.pushes} pushes accepted by LINE ` +
        `(${viaPush} answers went out as pushes; event → answer p50 ${counts.answerMs.p50} ms, p99 ${counts.answerMs.p99} ms, max ${counts.answerMs.max} ms); flow ${flowMs} ms, settled ${settle.waitedMs} ms later${settle.pending ? ` (pending 3 s in: ${settle.pending})` : ''}; process error logs: ${summary(errorLines(shop))}`,
    );
  });
});
