import crypto from 'node:crypto';
import fc from 'fast-check';
import { checkInvariants } from '../../src/domain/invariants';
import { normalizeText } from '../../src/line/command-parser';
import type { Order } from '../../src/domain/orders';
import { placeOrder } from '../helpers/orders';
import { newEventId, newUserId, sign, startShop, TestShop, waitFor } from '../helpers/shop';

/**
 * Fuzzing the bot through its real front door: signed webhooks (many events per body) to the real
 * app on real PostgreSQL and Redis, a worker processing them, replies recorded by the LINE double.
 *
 * Inputs come from fast-check with a seed printed at the start; the same seed gives the same
 * inputs, so a failure is replayed with
 *   FUZZ_SEED=<seed> npx jest test/integration/fuzz.test.ts
 * (FUZZ_RUNS=<n> changes how many events, default 10,000). The inputs are sampled, not shrunk:
 * the whole system is one property, and the failing events are printed in full.
 */
const SEED = Number(process.env.FUZZ_SEED ?? crypto.randomInt(2 ** 31));
const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const BATCH = 25;
/** Events stored but not yet processed, at most: keeps every reply inside its token's fresh minute. */
const MAX_IN_FLIGHT = 300;
const USERS = 40;

// ---------------------------------------------------------------- generators

const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((n) => String.fromCharCode(n)); // lone surrogates included
const control = fc.integer({ min: 0, max: 0x1f }).map((n) => String.fromCharCode(n));
const fullWidth = fc.integer({ min: 0xff01, max: 0xff5e }).map((n) => String.fromCharCode(n));
const emoji = fc.constantFrom('😀', '🛍️', '👨‍👩‍👧‍👦', '🇹🇼', '❤️', '\u200d', '\ufe0f', '🏳️‍🌈', '\u{1F9FE}');
const special = fc.constantFrom('\u0000', '\ud800', '\udfff', '\ufffd', '\ufeff', '\u202e', '\u3000', '\u00a0', '\n', '\t', '\r\n', '%', '&', '=', '+', '\\', '"', "'", '<', '>');
const cjk = fc.integer({ min: 0x4e00, max: 0x9fff }).map((n) => String.fromCharCode(n));
const anyChar = fc.oneof(codeUnit, control, fullWidth, emoji, special, cjk, fc.string({ minLength: 1, maxLength: 1 }));
const randomText = fc.array(anyChar, { maxLength: 40 }).map((a) => a.join(''));

const INJECTIONS = [
  "'; DROP TABLE orders; --",
  "1 OR 1=1",
  "' OR '1'='1",
  "1; UPDATE stock_slots SET on_hand = 0; --",
  "$1",
  "?",
  "%' AND 1=0 UNION SELECT null--",
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  '"><svg onload=alert(1)>',
  '{{7*7}}',
  '${process.env}',
  '__proto__',
  'constructor',
  '[object Object]',
  'undefined',
  'null',
  'NaN',
  'Error: boom',
];
const NUMBERS = ['0', '-0', '-1', '1', '99', '100', '999999', '1000000', '2147483648', '-2147483649', '9'.repeat(40), '1e9', '1e999', 'NaN', 'Infinity', '-Infinity', '0x10', '1.5', '١٢', '０１', '+', '-', '++1', '+-1', '', ' '];
const number = fc.oneof(fc.constantFrom(...NUMBERS), fc.integer().map(String), fc.bigInt().map(String));

const SKUS = ['TEA-001', 'tea-001', 'COF-001', 'A001', 'ＴＥＡ－００１', 'X'];
const METHODS = ['sinopac-atm', 'sinopac-card', 'ecpay-credit', 'ecpay-atm', 'ecpay-cvs', 'wallet', 'bitcoin', '', 'SINOPAC-ATM'];

/** Mutations of a string: insert, delete, replace, repeat, full-width, case, whitespace. */
function mutate(base: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(base, fc.array(fc.tuple(fc.nat(6), fc.nat(), anyChar), { maxLength: 3 })).map(([s, ops]) => {
    for (const [op, at, ch] of ops) {
      const i = s.length ? at % (s.length + 1) : 0;
      switch (op) {
        case 0: s = s.slice(0, i) + ch + s.slice(i); break;
        case 1: s = s.slice(0, i) + s.slice(i + 1); break;
        case 2: s = s.slice(0, i) + ch + s.slice(i + 1); break;
        case 3: s = s + ' ' + s; break;
        case 4: s = s.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)); break; // full-width
        case 5: s = s.toUpperCase(); break;
        default: s = s.replace(/ /g, ['  ', '\u3000', '\t', '\n', ''][at % 5]!); break;
      }
    }
    return s;
  });
}

function textArb(orderNos: string[]): fc.Arbitrary<string> {
  const order = fc.constantFrom(...orderNos, 'A000001', 'Z999999999', 'a1234567');
  const command = fc.oneof(
    fc.constantFrom('商品', 'menu', 'products', '商品目錄', '目錄', '購物車', 'cart', '結帳', 'checkout', '訂單', 'orders', '說明', 'help', '?', '點數', '錢包', '會員', '後台', 'admin', '收款', '今日訂單', '待出貨', '庫存', '出貨', '退款', '取消', 'cancel'),
    fc.tuple(fc.constantFrom('cart', '購物車'), fc.constantFrom(...SKUS, '1', '2', '10', '0', '-1', '999999999'), fc.oneof(number, number.map((n) => '+' + n), number.map((n) => '-' + n))).map((a) => a.join(' ')),
    fc.tuple(fc.constantFrom('訂單', 'orders', '取消', 'cancel', '完成', '出貨', '退款'), order).map((a) => a.join(' ')),
    fc.tuple(fc.constantFrom('庫存', '退款', '收款', '出貨'), fc.constantFrom(...SKUS, ...orderNos, '1234 5678 9012 3456', '1234-5678'), number).map((a) => a.join(' ')),
  );
  return fc.oneof(
    { weight: 6, arbitrary: mutate(command) },
    { weight: 2, arbitrary: command },
    { weight: 3, arbitrary: randomText },
    { weight: 2, arbitrary: mutate(fc.constantFrom(...INJECTIONS)) },
    { weight: 1, arbitrary: fc.array(fc.oneof(emoji, fullWidth), { maxLength: 30 }).map((a) => a.join('')) },
    // 5,000 characters (LINE's limit for a text message), and a little over.
    { weight: 1, arbitrary: fc.tuple(fc.oneof(randomText, command), fc.integer({ min: 4990, max: 5010 })).map(([s, n]) => (s || 'x').repeat(Math.ceil(n / Math.max(1, (s || 'x').length))).slice(0, n)) },
  );
}

function postbackArb(orderNos: string[], productIds: number[]): fc.Arbitrary<string> {
  const order = fc.constantFrom(...orderNos, 'A000001', 'a1234567', '');
  const pid = fc.oneof(fc.constantFrom(...productIds.map(String)), number);
  const real = fc.oneof(
    fc.constantFrom('action=cart', 'action=wallet', 'action=points', 'action=member', 'action=checkout', 'action=menu'),
    number.map((n) => `action=menu&page=${n}`),
    fc.tuple(fc.constantFrom('add', 'inc', 'dec'), pid).map(([a, p]) => `action=${a}&p=${p}`),
    number.map((n) => `action=checkout&v=${n}`),
    fc.tuple(order, fc.constantFrom(...METHODS)).map(([o, m]) => `action=pay&o=${o}&m=${m}`),
    fc.tuple(fc.constantFrom('order', 'cancel', 'redeem'), order).map(([a, o]) => `action=${a}&o=${o}`),
    fc.constantFrom('100', '500', '1000', ...NUMBERS).map((n) => `action=topup&a=${n}`),
    fc.tuple(number, fc.constantFrom(...METHODS)).map(([t, m]) => `action=tpay&t=${t}&m=${m}`),
  );
  const broken = fc.constantFrom('', 'action', 'action=', '=', '&&&', '=&=&=', '%', '%zz', '%00', 'action=%E0%A4%A', 'action=pay&o=', 'action=add&p=1&p=2&action=cancel', 'action=ADD&p=1', 'Action=cart', 'action=cart#x', '?action=cart', 'action=cart;drop', 'a'.repeat(301), 'action=add&p=' + '1'.repeat(300));
  return fc.oneof(
    { weight: 5, arbitrary: mutate(real) },
    { weight: 3, arbitrary: real },
    { weight: 2, arbitrary: broken },
    { weight: 2, arbitrary: randomText },
    { weight: 1, arbitrary: mutate(fc.constantFrom(...INJECTIONS)).map((s) => `action=${s}`) },
  );
}

type Input = { kind: 'text' | 'postback'; user: number; value: string };

// ---------------------------------------------------------------- the run

/** Error-ish ASCII that must never reach a shopper (unless the shopper typed it and it is echoed). */
const LEAK = /Error|at \w+ \(|undefined|null|NaN|\[object|ECONN|SQLSTATE|violates|syntax|invalid input|stack|Exception|knex|postgres|redis/gi;

/** Every string value in a LINE message (text, altText, flex contents, labels, data). */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) strings(x, out);
  return out;
}

describe(`fuzz: ${RUNS} random texts and postbacks as signed webhooks (FUZZ_SEED=${SEED})`, () => {
  let shop: TestShop;
  beforeAll(async () => {
    // eslint-disable-next-line no-console
    console.log(`fuzz seed ${SEED} (${RUNS} events): replay with FUZZ_SEED=${SEED} npx jest test/integration/fuzz.test.ts`);
    shop = await startShop({ label: 'fuzz', sinopac: true, ecpay: true, poolMax: 12, workers: false });
  });
  afterAll(async () => {
    await shop?.close();
  });

  test('never a 5xx, every event answered by exactly one reply, no error text in any reply, only states valid commands can make', async () => {
    const db = shop.c.db;
    const users = Array.from({ length: USERS }, () => newUserId());
    const victim = newUserId(); // never sends a fuzz event: nothing of theirs may change
    await shop.startWorkers();
    // Real order numbers for the fuzzer to use: the victim's (others must not touch them) and two
    // fuzz users' own (they may pay or cancel them).
    const victimOrder = await placeOrder(shop, victim, 'TEA-001', 2);
    const own = [await placeOrder(shop, users[0]!, 'TEA-001', 1), await placeOrder(shop, users[1]!)];
    const orderNos = [victimOrder.order_no, ...own.map((o) => o.order_no), victimOrder.order_no.toLowerCase()];
    const products = await db('products').orderBy('id').select('id', 'sku', 'name', 'price');
    const stockBefore = await db('stock_slots').orderBy(['product_id', 'slot']).select('product_id', 'slot', 'on_hand');
    const victimAttemptsBefore = await db('payment_attempts').where({ order_id: victimOrder.id }).count<{ n: number }[]>({ n: '*' });
    await shop.stopWorkers();
    await shop.startWorkers();

    const input: fc.Arbitrary<Input> = fc.oneof(
      fc.record({ kind: fc.constant('text' as const), user: fc.nat(USERS - 1), value: textArb(orderNos) }),
      fc.record({ kind: fc.constant('postback' as const), user: fc.nat(USERS - 1), value: postbackArb(orderNos, products.map((p) => p.id)) }),
    );
    // An input naming a fuzz user's own order is sent by that user, so paying and cancelling it
    // really happen (a valid state change) next to the same taps on the bystander's order.
    const inputs = fc.sample(input, { seed: SEED, numRuns: RUNS }).map((inp) => {
      const mine = own.findIndex((o) => inp.value.toUpperCase().includes(o.order_no));
      return mine >= 0 ? { ...inp, user: mine } : inp;
    });

    type Sent = Input & { eventId: string; replyToken: string };
    const sent: Sent[] = [];
    const statuses = new Map<number, number>();
    const t0 = Date.now();
    const unprocessed = async () => Number((await db('line_events').whereNull('processed_at').whereNull('failed_at').count<{ n: number }[]>({ n: '*' }))[0]!.n);
    for (let i = 0; i < inputs.length; i += BATCH) {
      const events = inputs.slice(i, i + BATCH).map((inp) => {
        const userId = users[inp.user]!;
        const replyToken = shop.line.issueReplyToken(userId);
        const eventId = newEventId();
        sent.push({ ...inp, eventId, replyToken });
        const base = { mode: 'active', timestamp: Date.now(), source: { type: 'user', userId }, webhookEventId: eventId, deliveryContext: { isRedelivery: false }, replyToken };
        return inp.kind === 'text'
          ? { ...base, type: 'message', message: { type: 'text', id: String(i), quoteToken: 'q', text: inp.value } }
          : { ...base, type: 'postback', postback: { data: inp.value } };
      });
      // JSON.stringify writes U+0000 and lone surrogates as \u0000 / \ud800 escapes, as LINE does.
      const body = JSON.stringify({ destination: 'U0123456789abcdef0123456789abcdef', events });
      const res = await fetch(`${shop.url}/webhook/line`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-line-signature': sign(body) }, body });
      await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status !== 200) {
        throw new Error(`FUZZ_SEED=${SEED}: webhook answered ${res.status} for events ${i}..${i + events.length - 1}: ${JSON.stringify(inputs.slice(i, i + BATCH))}`);
      }
      while ((await unprocessed()) > MAX_IN_FLIGHT) await new Promise((r) => setTimeout(r, 20));
    }
    const sentMs = Date.now() - t0;
    await waitFor(async () => (await unprocessed()) === 0, 'every fuzz event processed', 120_000);
    await waitFor(async () => {
      const [{ n }] = await db('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
      return Number(n) === 0;
    }, 'every reply delivered', 60_000);
    await new Promise((r) => setTimeout(r, 500));
    // eslint-disable-next-line no-console
    console.log(`fuzz: ${sent.length} events in ${Math.ceil(sent.length / BATCH)} bodies, sent in ${sentMs} ms, all processed after ${Date.now() - t0} ms; statuses ${JSON.stringify([...statuses])}`);

    const tally = async (table: string) => Number((await db(table).count<{ n: number }[]>({ n: '*' }))[0]!.n);
    // eslint-disable-next-line no-console
    console.log(`fuzz reached: ${await tally('orders')} orders, ${await tally('payment_attempts')} payment attempts, ${await tally('cart_lines')} cart lines, ${await tally('wallet_topups')} top-ups, ${(await db('orders').where({ status: 'cancelled' }).count<{ n: number }[]>({ n: '*' }))[0]!.n} cancelled`);

    const failures: string[] = [];
    const show = (s: Sent) => `${s.kind} ${JSON.stringify(s.value.length > 200 ? s.value.slice(0, 200) + '…' : s.value)} (user ${s.user})`;

    // Every event stored once and processed, none failed.
    const rows = await db('line_events').whereIn('webhook_event_id', sent.map((s) => s.eventId)).select('webhook_event_id', 'processed_at', 'failed_at');
    if (rows.length !== sent.length) failures.push(`${sent.length} events sent, ${rows.length} stored`);
    for (const r of rows.filter((r) => !r.processed_at || r.failed_at)) failures.push(`event ${r.webhook_event_id} not processed (failed_at ${r.failed_at})`);

    // Exactly one accepted reply per reply token, and nothing error-ish in it.
    const replies = new Map<string, unknown[][]>();
    for (const r of shop.line.requests) {
      if (r.path !== '/v2/bot/message/reply' || r.status !== 200) continue;
      const b = r.body as { replyToken: string; messages: unknown[] };
      replies.set(b.replyToken, [...(replies.get(b.replyToken) ?? []), b.messages]);
    }
    const pushes = shop.line.delivered().filter((d) => d.kind === 'push' && users.includes(d.to));
    if (pushes.length) failures.push(`${pushes.length} pushes to fuzz users (an event answered late, or a notice no command can cause): ${JSON.stringify(pushes.slice(0, 3))}`);
    for (const s of sent) {
      const got = replies.get(s.replyToken) ?? [];
      if (got.length !== 1) {
        failures.push(`${got.length} replies to ${show(s)}`);
        continue;
      }
      const echo = [s.value, normalizeText(s.value)].map((x) => x.toLowerCase());
      for (const text of strings(got[0])) {
        // Our own links carry random tokens (base64url) that may spell a word by chance: "6sNanCui…".
        const scanned = text.replace(/https?:\/\/\S+/g, '<url>');
        for (const m of scanned.matchAll(LEAK)) {
          if (echo.some((e) => e.includes(m[0].toLowerCase()))) continue; // the shopper's own words, quoted back
          failures.push(`reply to ${show(s)} contains "${m[0]}": ${JSON.stringify(scanned.slice(Math.max(0, m.index - 80), m.index + 80))}`);
        }
        if (/[\u0000\ud800-\udfff]/.test(text.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) failures.push(`reply to ${show(s)} carries U+0000 or a lone surrogate`);
      }
    }

    // Only states valid commands can make.
    failures.push(...(await checkInvariants(db)).map((v) => `invariant: ${v}`));
    const productsAfter = await db('products').orderBy('id').select('id', 'sku', 'name', 'price');
    if (JSON.stringify(productsAfter) !== JSON.stringify(products)) failures.push('the catalog changed (names, SKUs or prices)');
    // Nobody paid (no one can, from a chat), and shoppers are not owners: stock on hand is as it was.
    const stockAfter = await db('stock_slots').orderBy(['product_id', 'slot']).select('product_id', 'slot', 'on_hand');
    if (JSON.stringify(stockAfter) !== JSON.stringify(stockBefore)) failures.push('stock on hand changed');
    const paid = await db('orders').whereNotIn('status', ['pending_payment', 'cancelled', 'expired']).select('order_no', 'status');
    if (paid.length) failures.push(`orders no chat command can make: ${JSON.stringify(paid)}`);
    const badLines = await db('cart_lines').where('qty', '<', 1).orWhere('qty', '>', 99).select('cart_id', 'product_id', 'qty');
    if (badLines.length) failures.push(`cart lines out of 1..99: ${JSON.stringify(badLines)}`);
    const badOrderLines = await db('order_lines').where('qty', '<', 1).orWhere('line_total', '<', 0).select('id', 'qty', 'line_total');
    if (badOrderLines.length) failures.push(`order lines with qty < 1 or a negative total: ${JSON.stringify(badOrderLines)}`);
    // Every pending order is backed by held reservations for exactly its lines.
    const unbacked = (await db.raw(`SELECT o.order_no FROM orders o WHERE o.status = 'pending_payment'
        AND coalesce((SELECT sum(qty) FROM reservations r WHERE r.order_id = o.id AND r.status = 'held'), 0)
          <> coalesce((SELECT sum(qty) FROM order_lines l WHERE l.order_id = o.id), -1)`)).rows;
    if (unbacked.length) failures.push(`orders not backed by their reservations: ${JSON.stringify(unbacked)}`);
    const foreign = (await db.raw(`SELECT p.id, p.order_id FROM payment_attempts p JOIN orders o ON o.id = p.order_id
        WHERE p.request_key IS NOT NULL AND p.request_key IN (SELECT webhook_event_id FROM line_events WHERE payload->'source'->>'userId' <> o.line_user_id)`)).rows;
    if (foreign.length) failures.push(`payment attempts made on someone else's order: ${JSON.stringify(foreign)}`);
    // The victim's order is untouched.
    const v = await db('orders').where({ id: victimOrder.id }).first<Order>();
    if (v?.status !== 'pending_payment' || v.total !== victimOrder.total) failures.push(`the victim's order changed: ${JSON.stringify(v)}`);
    const victimAttempts = await db('payment_attempts').where({ order_id: victimOrder.id }).count<{ n: number }[]>({ n: '*' });
    if (Number(victimAttempts[0]!.n) !== Number(victimAttemptsBefore[0]!.n)) failures.push('payment attempts were made on the victim\'s order');
    const wallets = await db('member_accounts').where({ kind: 'wallet' }).where('balance', '<>', 0).select('line_user_id', 'balance');
    if (wallets.length) failures.push(`wallet balances no chat command can make: ${JSON.stringify(wallets)}`);

    if (failures.length) {
      const head = failures.slice(0, 40).join('\n');
      throw new Error(`FUZZ_SEED=${SEED}: ${failures.length} failures (replay: FUZZ_SEED=${SEED} npx jest test/integration/fuzz.test.ts)\n${head}`);
    }
    expect(sent).toHaveLength(RUNS);
    expect(sent.filter((x) => replies.get(x.replyToken)?.length === 1)).toHaveLength(RUNS);
  }, 300_000);
});
