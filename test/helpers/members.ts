import { changeCart } from '../../src/domain/cart';
import { setStockOnHand } from '../../src/domain/catalog';
import { post } from '../../src/domain/members/ledger';
import { lockOrder, type Order } from '../../src/domain/orders';
import type { PaymentAttempt, WalletTopup } from '../../src/domain/payments';
import { settled, TestShop, waitFor } from './shop';

export const walletOf = async (shop: TestShop, user: string): Promise<number> =>
  (await shop.c.db('member_accounts').where({ line_user_id: user, kind: 'wallet' }).first('balance'))?.balance ?? 0;

export const pointsOf = async (shop: TestShop, user: string): Promise<number> =>
  (await shop.c.db('member_accounts').where({ line_user_id: user, kind: 'points' }).first('balance'))?.balance ?? 0;

/** A member's ledger entries of one kind, oldest first. */
export const entriesOf = (shop: TestShop, user: string, account: 'points' | 'wallet') =>
  shop.c.db('member_ledger as e')
    .join('member_accounts as a', 'a.id', 'e.account_id')
    .where({ 'a.line_user_id': user, 'a.kind': account })
    .orderBy('e.id')
    .select<Array<{ id: number; kind: string; amount: number; balance_after: number; shortfall: number; source: string }>>('e.id', 'e.kind', 'e.amount', 'e.balance_after', 'e.shortfall', 'e.source');

/** Puts money or points straight into an account (an `adjust` entry), for tests that need a balance to start from. */
export async function credit(shop: TestShop, user: string, account: 'points' | 'wallet', amount: number, kind = 'adjust'): Promise<void> {
  await shop.c.db('line_users').insert({ user_id: user }).onConflict('user_id').ignore();
  const r = await post(shop.c.db, { userId: user, account, kind, amount, source: `test:${kind}-${Date.now()}-${Math.random().toString(36).slice(2)}` });
  if (r.outcome !== 'posted') throw new Error(`test credit not posted: ${r.outcome}`);
}

/** Taps a top-up amount in the wallet; returns the top-up request it made. */
export async function requestTopup(shop: TestShop, user: string, amount: number): Promise<WalletTopup> {
  await settled(shop, await shop.tap(user, `action=topup&a=${amount}`));
  const t = await shop.c.db('wallet_topups').where({ line_user_id: user }).orderBy('id', 'desc').first<WalletTopup>();
  if (!t || t.amount !== amount) throw new Error('no top-up request was made');
  return t;
}

/** Taps a method for a top-up; returns the attempt the tap created (undefined if none). */
export async function chooseTopupMethod(shop: TestShop, user: string, topup: Pick<WalletTopup, 'id'>, method: string): Promise<PaymentAttempt | undefined> {
  const eventId = await shop.tap(user, `action=tpay&t=${topup.id}&m=${method}`);
  await settled(shop, eventId);
  return shop.c.db('payment_attempts').where({ request_key: eventId }).first<PaymentAttempt>();
}

/** A whole top-up by SinoPac ATM through the chat and the bank's sandbox; returns the attempt once credited. */
export async function topUpBySinopacAtm(shop: TestShop, user: string, amount: number): Promise<PaymentAttempt> {
  const before = await walletOf(shop, user);
  const topup = await requestTopup(shop, user, amount);
  const attempt = await chooseTopupMethod(shop, user, topup, 'sinopac-atm');
  if (!attempt) throw new Error('no SinoPac ATM attempt for the top-up');
  const paid = shop.sinopac!.payAtm(attempt.trade_no);
  if (!(await paid.delivered)) throw new Error('the SinoPac sandbox could not deliver its notification');
  await waitFor(async () => (await walletOf(shop, user)) === before + amount, `top-up of ${amount} credited`);
  await paymentsSettled(shop);
  return attempt;
}

/** Unpaid orders of one SKU for a shopper, placed straight through the checkout use case (fast, no chat). */
export async function placeOrdersDirect(shop: TestShop, user: string, sku: string, n: number): Promise<Order[]> {
  const orders: Order[] = [];
  await shop.c.db('line_users').insert({ user_id: user }).onConflict('user_id').ignore();
  for (let i = 0; i < n; i++) {
    const order = await shop.c.uow.run(async (trx, after) => {
      const change = await changeCart(trx, user, sku, { op: 'set', qty: 1 });
      if (change.kind !== 'updated') throw new Error(`cart change refused: ${change.kind}`);
      const r = await shop.c.shopping.placeOrder(trx, after, { userId: user, cartVersion: null });
      if (r.kind !== 'created') throw new Error(`checkout refused: ${r.kind}`);
      // Delivery completed as the page would (home delivery): these orders are for paying.
      const locked = (await lockOrder(trx, { id: r.order.id }))!;
      return shop.c.deliveryCheckout.complete(trx, after, locked, {
        method: 'home', subType: null, recipientName: '王小美', recipientPhone: '0912345678', recipientZip: null, recipientAddress: '台北市信義區市府路1號',
        storeId: null, storeName: null, storeAddress: null, storeOutside: null,
      }, { push: false });
    });
    orders.push(order);
  }
  return orders;
}

/** A product of its own (price, stock), so a test's amounts are round. */
export async function addProduct(shop: TestShop, sku: string, price: number, stock: number): Promise<number> {
  const category = await shop.c.db('categories').first('id');
  const [{ id }] = await shop.c.db('products')
    .insert({ sku, category_id: category.id, name: `測試商品 ${sku}`, price, image_url: 'https://example.com/p.png' })
    .returning('id');
  await setStockOnHand(shop.c.db, id, stock);
  return id;
}

/** Opens an ECPay checkout link and posts its form to the sandbox, as the shopper's browser does; returns the MerchantTradeNo. */
export async function ecpayCheckout(url: string): Promise<string> {
  const page = await (await fetch(url)).text();
  const form = /<form id="ecpay-checkout" method="post" action="([^"]*)"/.exec(page);
  if (!form) throw new Error(`no checkout form: ${page.slice(0, 300)}`);
  const action = form[1]!.replace(/&amp;/g, '&');
  const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const fields: Record<string, string> = {};
  for (const m of page.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) fields[unescape(m[1]!)] = unescape(m[2]!);
  const res = await fetch(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
  if (res.status !== 200) throw new Error(`the ECPay sandbox answered ${res.status}`);
  return fields.MerchantTradeNo!;
}

/** Nothing in flight: bank sandbox deliveries done, every bank notification processed, every message delivered. */
export async function paymentsSettled(shop: TestShop): Promise<void> {
  await shop.ecpay?.idle();
  await waitFor(async () => {
    const [n] = await shop.c.db('payment_notifications').whereNull('processed_at').count<{ n: number }[]>({ n: '*' });
    const [o] = await shop.c.db('outbox_messages').whereIn('status', ['pending', 'sending']).count<{ n: number }[]>({ n: '*' });
    return Number(n!.n) + Number(o!.n) === 0;
  }, 'payments and deliveries to settle');
}
