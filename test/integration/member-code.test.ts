import jsQR from 'jsqr';
import { PNG } from 'pngjs';
import { checkInvariants } from '../../src/domain/invariants';
import { M, T } from '../../src/texts';
import { credit, entriesOf, pointsOf, walletOf } from '../helpers/members';
import { newUserId, settled, startShop, TestShop, waitFor } from '../helpers/shop';

/**
 * The member card and its one-time payment code: shown with a QR picture that only an unguessable,
 * short-lived URL serves; charged by the owner in the shop (收款) once, with the tier discount,
 * from the wallet, never below 0; refused when used, expired or replaced.
 */

const PUBLIC = 'https://shop.example.test';
let shop: TestShop;
const owner = newUserId();
const owner2 = newUserId();

beforeAll(async () => {
  // LINE fetches Flex images over https only: the card carries its QR picture when the shop is reached over https.
  shop = await startShop({ label: 'member_code', owners: [owner, owner2], env: { PUBLIC_BASE_URL: PUBLIC } });
});
afterAll(async () => {
  await shop?.close();
});

const db = () => shop.c.db;

/** Shows the member card in chat; returns what it carries. */
async function showCard(user: string): Promise<{ code: string; qrPath: string; json: string }> {
  await settled(shop, await shop.say(user, '會員'));
  const json = JSON.stringify(shop.line.deliveredTo(user).at(-1)!.messages);
  const url = new RegExp(`"url":"${PUBLIC.replace(/\./g, '\\.')}(/member/qr/[A-Za-z0-9_-]{43}\\.png)"`).exec(json);
  const shown = /"text":"(\d{4} \d{4} \d{4} \d{4})"/.exec(json);
  if (!url || !shown) throw new Error(`no member card in ${json.slice(0, 200)}`);
  return { code: shown[1]!.replace(/ /g, ''), qrPath: url[1]!, json };
}

async function fetchQr(path: string): Promise<{ status: number; cacheControl: string; type: string; body: Buffer }> {
  const res = await fetch(`${shop.url}${path}`);
  return { status: res.status, cacheControl: res.headers.get('cache-control') ?? '', type: res.headers.get('content-type') ?? '', body: Buffer.from(await res.arrayBuffer()) };
}

async function ownerSays(who: string, text: string): Promise<string> {
  await settled(shop, await shop.say(who, text));
  return shop.line.textsTo(who).at(-1)!;
}

describe('the member card', () => {
  it('會員 shows tier, points, balance and the QR picture of a 15-minute one-time code, served only from its own URL and never cached', async () => {
    const user = newUserId();
    await credit(shop, user, 'points', 1200, 'earn');
    await credit(shop, user, 'wallet', 800);
    const before = Date.now();
    const card = await showCard(user);
    expect(card.code).toMatch(/^\d{16}$/);
    expect(shop.line.textsTo(user).at(-1)).toBe(M.cardAlt('銀卡'));
    for (const s of [M.tierValue('銀卡', 5), M.points(1200), 'NT$800', M.nextTier('金卡', 3800)]) expect(card.json).toContain(s);

    const qr = await fetchQr(card.qrPath);
    expect(qr).toMatchObject({ status: 200, type: 'image/png' });
    expect(qr.cacheControl).toContain('no-store');
    const png = PNG.sync.read(qr.body);
    expect(jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data).toBe(card.code);

    // Only hashes are kept: the code itself is nowhere in the row.
    const row = await db()('member_codes').where({ line_user_id: user }).first();
    expect(JSON.stringify(row)).not.toContain(card.code);
    expect(row.expires_at.getTime()).toBeGreaterThanOrEqual(before + 15 * 60_000 - 1000);
    expect(row.expires_at.getTime()).toBeLessThanOrEqual(Date.now() + 15 * 60_000);
    // A guessed or mangled reference shows nothing.
    expect((await fetchQr('/member/qr/' + 'A'.repeat(43) + '.png')).status).toBe(404);
    expect((await fetchQr(card.qrPath.replace('.png', '.jpg'))).status).toBe(404);
  });
});

describe('charging a member code in the shop (收款)', () => {
  it('applies the tier discount, debits the wallet, earns points, sends both receipts; the code then works no more', async () => {
    const user = newUserId();
    await credit(shop, user, 'points', 5000, 'earn'); // 金卡 9 折
    await credit(shop, user, 'wallet', 2000);
    const { code, qrPath } = await showCard(user);
    const reply = await ownerSays(owner, `收款 ${code.replace(/(\d{4})/g, '$1 ').trim()} 1000`);
    expect(reply).toContain('門市收款成功：NT$900');
    expect(reply).toContain('原價 NT$1,000，會員折扣 −NT$100');
    expect(reply).toContain(`付款碼末四碼 ${code.slice(-4)}`);
    expect(await walletOf(shop, user)).toBe(1100);
    expect(await pointsOf(shop, user)).toBe(5009);
    await waitFor(() => shop.line.textsTo(user).some((t) => t.startsWith('✅ 門市付款成功：NT$900')), 'shopper receipt');
    expect(shop.line.textsTo(user).find((t) => t.startsWith('✅ 門市付款成功'))).toBe(
      M.chargeShopper({ amount: 1000, discount: 100, tierName: '金卡', paid: 900, balance: 1100, pointsEarned: 9 }),
    );
    // Both owners get the receipt pushed (the one who charged also has it as the reply).
    await waitFor(() => shop.line.textsTo(owner2).some((t) => t.startsWith('💰 門市收款成功：NT$900')), 'owner receipt push');
    expect(shop.line.textsTo(owner).filter((t) => t.startsWith('💰 門市收款成功：NT$900'))).toHaveLength(2);

    expect(await ownerSays(owner, `收款 ${code} 100`)).toBe(M.ownerChargeUsed);
    expect(await walletOf(shop, user)).toBe(1100);
    expect((await fetchQr(qrPath)).status).toBe(404);
    expect(await db()('audit_log').where({ action: 'member.charge', target_id: user }).count<{ n: number }[]>({ n: '*' })).toEqual([{ n: 1 }]);
  });

  it('used twice at once → one charge (two owners in one webhook call, and five charges straight through the use case)', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 1000);
    const first = await showCard(user);
    const seen = [owner, owner2].map((o) => shop.line.textsTo(o).length);
    const events = [shop.textEvent(owner, `收款 ${first.code} 300`), shop.textEvent(owner2, `收款 ${first.code} 300`)];
    expect(await shop.sendEvents(events)).toBe(200);
    for (const e of events) await settled(shop, e.webhookEventId);
    // The winner's reply and both owners' receipt pushes start with 💰, in any order with the loser's reply.
    const answers = [owner, owner2].map((o, i) => shop.line.textsTo(o).slice(seen[i]).filter((t) => !t.startsWith('💰')));
    expect(answers.flat()).toEqual([M.ownerChargeUsed]);
    expect(await walletOf(shop, user)).toBe(700);

    const second = await showCard(user);
    const actor = { userId: owner, source: 'web' as const };
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map(() => shop.c.uow.run((trx, after) => shop.c.members.codes.charge(trx, after, actor, { code: second.code, amount: 100 }))),
    );
    expect(results.filter((r) => r.kind === 'charged')).toHaveLength(1);
    expect(results.filter((r) => r.kind === 'used')).toHaveLength(4);
    expect(await walletOf(shop, user)).toBe(600);
    expect((await entriesOf(shop, user, 'wallet')).filter((e) => e.kind === 'charge').map((e) => e.amount)).toEqual([-300, -100]);
  });

  it('an expired code is refused, and so is its picture', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 500);
    const { code, qrPath } = await showCard(user);
    await db()('member_codes').where({ line_user_id: user }).update({ expires_at: new Date(Date.now() - 1000) });
    expect(await ownerSays(owner, `收款 ${code} 100`)).toBe(M.ownerChargeExpired);
    expect((await fetchQr(qrPath)).status).toBe(404);
    expect(await walletOf(shop, user)).toBe(500);
  });

  it('a replaced code is refused (a new card replaces the old code); the new one works', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 500);
    const old = await showCard(user);
    const fresh = await showCard(user);
    expect(fresh.code).not.toBe(old.code);
    expect((await fetchQr(old.qrPath)).status).toBe(404);
    expect((await fetchQr(fresh.qrPath)).status).toBe(200);
    expect(await ownerSays(owner, `收款 ${old.code} 100`)).toBe(M.ownerChargeReplaced);
    expect(await ownerSays(owner, `收款 ${fresh.code} 100`)).toContain('門市收款成功：NT$100');
    expect(await walletOf(shop, user)).toBe(400);
  });

  it('a charge the wallet does not cover is refused and takes nothing; the code keeps working', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 250);
    const { code } = await showCard(user);
    expect(await ownerSays(owner, `收款 ${code} 300`)).toBe(M.ownerChargeInsufficient(250, 300));
    expect(await walletOf(shop, user)).toBe(250);
    const r = await ownerSays(owner, `收款 ${code} 250`);
    expect(r).toContain('門市收款成功：NT$250');
    expect(await walletOf(shop, user)).toBe(0);
  });

  it('only owners may charge; a malformed command or an unknown code gets its usage or a clear refusal', async () => {
    const shopper = newUserId();
    expect(await ownerSays(shopper, '收款 1234567890123456 100')).toBe(T.ownerOnly);
    expect(await ownerSays(owner, '收款')).toBe(M.ownerChargeUsage);
    expect(await ownerSays(owner, '收款 1234567890123456 abc')).toBe(M.ownerChargeUsage);
    expect(await ownerSays(owner, '收款 1234567890123456 100')).toBe(M.ownerChargeUnknown);
    expect(await ownerSays(owner, '收款 12345 100')).toBe(M.ownerChargeUnknown);
    expect(await ownerSays(owner, '收款 1234567890123456 0')).toBe(M.ownerChargeInvalidAmount);
  });

  it('invariants hold: ledger sums and no negative balance', async () => {
    expect(await checkInvariants(db())).toEqual([]);
  });
});
