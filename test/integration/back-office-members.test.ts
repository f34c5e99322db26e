import { checkInvariants } from '../../src/domain/invariants';
import { ADMIN_MEMBERS, M } from '../../src/texts';
import { AdminClient, loggedIn, newKey } from '../helpers/admin';
import { credit, entriesOf, walletOf } from '../helpers/members';
import { placeOrder } from '../helpers/orders';
import { newUserId, settled, startShop, TestShop } from '../helpers/shop';

/**
 * The back office's members: each member's balances and ledger, and 收款 — the same use case as
 * the owner's chat command, once per form submission.
 */

const owner = newUserId();
let shop: TestShop;
let admin: AdminClient;

beforeAll(async () => {
  shop = await startShop({ label: 'bo_members', sinopac: true, owners: [owner] });
  admin = await loggedIn(shop, owner);
});
afterAll(async () => {
  await shop?.close();
});

async function codeOf(user: string): Promise<string> {
  await settled(shop, await shop.say(user, '會員'));
  return /"text":"(\d{4} \d{4} \d{4} \d{4})"/.exec(JSON.stringify(shop.line.deliveredTo(user).at(-1)!.messages))![1]!;
}

/** Follows a form's redirect and returns the page it lands on. */
async function landing(r: { status: number; headers: Headers }): Promise<string> {
  expect(r.status).toBe(303);
  return (await admin.get(r.headers.get('location')!)).text;
}

describe('members in the back office', () => {
  it("lists members with their balances, and shows one member's wallet and points ledger", async () => {
    const user = newUserId();
    await shop.c.db('line_users').insert({ user_id: user, display_name: '王小明' });
    await credit(shop, user, 'wallet', 1500);
    await credit(shop, user, 'points', 1200, 'earn');
    const list = await admin.get('/admin/members');
    expect(list.status).toBe(200);
    expect(list.text).toContain('王小明');
    expect(list.text).toContain('NT$1,500');
    expect(list.text).toContain(`<label for="f-amount">${ADMIN_MEMBERS.amount}`);
    expect(list.text).toContain(`>${ADMIN_MEMBERS.charge}</button>`);

    const detail = await admin.get(`/admin/members/${user}`);
    expect(detail.status).toBe(200);
    expect(detail.text).toContain(ADMIN_MEMBERS.detailTitle('王小明'));
    expect(detail.text).toContain('銀卡');
    expect(detail.text).toContain(M.entryValue(1500, true));
    expect(detail.text).toContain(M.entryValue(1200, false));
    expect((await admin.get(`/admin/members/${newUserId()}`)).status).toBe(404);
  });

  it('收款 charges a member code once per submission, with the same receipts as the chat; a second submission finds the code used', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 1000);
    const code = await codeOf(user);
    const key = newKey();
    const first = await admin.post('/admin/charge', { code, amount: '300' }, { key });
    expect(await landing(first)).toContain('門市收款成功：NT$300');
    // The same submission again (a double click, a resent form): the first outcome, nothing charged.
    const again = await admin.post('/admin/charge', { code, amount: '300' }, { key });
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expect(await walletOf(shop, user)).toBe(700);
    expect(shop.line.textsTo(user).filter((t) => t.startsWith('✅ 門市付款成功'))).toHaveLength(1);
    expect(await shop.c.db('audit_log').where({ action: 'member.charge', target_id: user, source: 'web' }).count<{ n: number }[]>({ n: '*' })).toEqual([{ n: 1 }]);

    const used = await admin.post('/admin/charge', { code, amount: '100' });
    expect(await landing(used)).toContain(M.ownerChargeUsed);
    expect(await walletOf(shop, user)).toBe(700);
  });

  it('refuses a malformed code or amount on the form itself (422), charging nothing', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 500);
    const code = await codeOf(user);
    const bad = await admin.post('/admin/charge', { code: '1234', amount: '10' });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain(ADMIN_MEMBERS.codeInvalid);
    const badAmount = await admin.post('/admin/charge', { code, amount: '0' });
    expect(badAmount.status).toBe(422);
    expect(badAmount.text).toContain(ADMIN_MEMBERS.amountInvalid);
    expect(await walletOf(shop, user)).toBe(500);
  });

  it("a wallet-paid order's page offers the refund, which goes back to the wallet", async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 1000);
    const order = await placeOrder(shop, user, 'SNK-001', 1); // 450
    await settled(shop, await shop.tap(user, `action=pay&o=${order.order_no}&m=wallet`));
    const page = await admin.get(`/admin/orders/${order.order_no}`);
    expect(page.text).toContain('id="refund-form"');
    const r = await admin.post(`/admin/orders/${order.order_no}/refund`, { amount: '150' });
    expect(await landing(r)).toContain(M.ownerRefundedToWallet(order.order_no, 150, 700));
    expect(await walletOf(shop, user)).toBe(700);
    expect((await entriesOf(shop, user, 'wallet')).map((e) => e.kind)).toEqual(['adjust', 'pay', 'refund']);
  });

  it('invariants hold', async () => {
    expect(await checkInvariants(shop.c.db)).toEqual([]);
  });
});
