import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkInvariants } from '../../src/domain/invariants';
import { signPosBody } from '../../src/domain/members/pos-journal';
import { M } from '../../src/texts';
import { createApp } from '../../src/web/app';
import { credit, entriesOf, pointsOf, walletOf } from '../helpers/members';
import { newUserId, settled, startShop, TestShop, waitFor } from '../helpers/shop';

/**
 * POST /api/pos/journal: a store device's offline purchases, signed with POS_API_SECRET. Each
 * purchase applies once by (device_id, txn_no), never overdraws, and the answer says per entry what
 * became of it; a bad signature, an old timestamp or a replayed body changes nothing.
 */

const SECRET = 'pos-secret-for-tests-0123456789';
let shop: TestShop;
const owner = newUserId();

beforeAll(async () => {
  shop = await startShop({ label: 'pos_journal', owners: [owner], env: { POS_API_SECRET: SECRET } });
});
afterAll(async () => {
  await shop?.close();
});

const db = () => shop.c.db;
const now = () => Math.floor(Date.now() / 1000);

interface Answer {
  status: number;
  body: { applied?: number; duplicate?: number; rejected?: number; entries?: Array<{ txn_no: string; status: string; reason?: string; balance?: number }>; error?: string };
}

async function upload(body: unknown, opts: { ts?: number; secret?: string; signature?: string; raw?: string; url?: string } = {}): Promise<Answer & { ts: number; signature: string; raw: string }> {
  const raw = opts.raw ?? JSON.stringify(body);
  const ts = opts.ts ?? now();
  const signature = opts.signature ?? signPosBody(opts.secret ?? SECRET, ts, raw);
  const res = await fetch(`${opts.url ?? shop.url}/api/pos/journal`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-pos-timestamp': String(ts), 'x-pos-signature': signature },
    body: raw,
  });
  return { status: res.status, body: (await res.json()) as Answer['body'], ts, signature, raw };
}

const journalRows = () => db()('pos_journal').count<{ n: number }[]>({ n: '*' }).then((r) => Number(r[0]!.n));

describe('the offline journal of store devices', () => {
  it('applies each purchase once: the same batch uploaded twice applies once and reports duplicates', async () => {
    const a = newUserId();
    const b = newUserId();
    await credit(shop, a, 'wallet', 1000);
    await credit(shop, b, 'wallet', 300);
    const t = new Date(Date.now() - 3600_000).toISOString();
    const batch = {
      device_id: 'shop-1-till',
      entries: [
        { txn_no: 1001, user_id: a, amount: 350, time: t },
        { txn_no: 1002, user_id: b, amount: 120, time: t },
        { txn_no: 1003, user_id: a, amount: 150, time: t },
      ],
    };
    const first = await upload(batch);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ applied: 3, duplicate: 0, rejected: 0 });
    expect(first.body.entries).toEqual([
      { txn_no: '1001', status: 'applied', balance: 650 },
      { txn_no: '1002', status: 'applied', balance: 180 },
      { txn_no: '1003', status: 'applied', balance: 500 },
    ]);
    // Uploaded again (the device did not see the answer): a new request, the same purchases.
    const again = await upload(batch, { ts: now() + 1 });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ applied: 0, duplicate: 3, rejected: 0 });
    expect(await walletOf(shop, a)).toBe(500);
    expect(await walletOf(shop, b)).toBe(180);
    expect((await entriesOf(shop, a, 'wallet')).filter((e) => e.kind === 'pos').map((e) => e.source)).toEqual(['pos:shop-1-till:1001', 'pos:shop-1-till:1003']);
    expect(await pointsOf(shop, a)).toBe(3 + 1); // ⌊350 / 100⌋ + ⌊150 / 100⌋
    // Both uploads at once (two devices' retries racing): still once.
    const c = newUserId();
    await credit(shop, c, 'wallet', 100);
    const race = { device_id: 'shop-1-till', entries: [{ txn_no: 2001, user_id: c, amount: 100, time: t }] };
    const [x, y] = await Promise.all([upload(race), upload(race, { ts: now() - 1 })]);
    expect([x.body.entries![0]!.status, y.body.entries![0]!.status].sort()).toEqual(['applied', 'duplicate']);
    expect(await walletOf(shop, c)).toBe(0);
  });

  it('rejects an entry that would overdraw while the rest apply, reports it per entry, and tells the owner', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 500);
    const t = Math.floor(Date.now() / 1000) - 600;
    const answer = await upload({
      device_id: 'kiosk-2',
      entries: [
        { txn_no: 'A1', user_id: user, amount: 300, time: t },
        { txn_no: 'A2', user_id: user, amount: 300, time: t + 1 },
        { txn_no: 'A3', user_id: user, amount: 200, time: t + 2 },
        { txn_no: 'A4', user_id: newUserId(), amount: 10, time: t + 3 },
      ],
    });
    expect(answer.status).toBe(200);
    expect(answer.body.entries).toEqual([
      { txn_no: 'A1', status: 'applied', balance: 200 },
      { txn_no: 'A2', status: 'rejected', reason: 'insufficient-balance' },
      { txn_no: 'A3', status: 'applied', balance: 0 },
      { txn_no: 'A4', status: 'rejected', reason: 'unknown-member' },
    ]);
    expect(await walletOf(shop, user)).toBe(0);
    await waitFor(() => shop.line.textsTo(owner).some((txt) => txt.startsWith('⚠️ 門市裝置 kiosk-2')), 'owner told');
    expect(shop.line.textsTo(owner).find((txt) => txt.startsWith('⚠️ 門市裝置 kiosk-2'))).toBe(
      M.ownerPosRejected('kiosk-2', [M.posRejectedLine('A2', 300, 'insufficient-balance'), M.posRejectedLine('A4', 10, 'unknown-member')]),
    );
    expect(await db()('pos_journal').where({ device_id: 'kiosk-2' }).orderBy('txn_no').pluck('status')).toEqual(['applied', 'rejected', 'applied', 'rejected']);

    // Uploaded again after a top-up: the rejected purchase is tried again and now applies; the others are duplicates.
    await credit(shop, user, 'wallet', 300);
    const retry = await upload({ device_id: 'kiosk-2', entries: [{ txn_no: 'A1', user_id: user, amount: 300, time: t }, { txn_no: 'A2', user_id: user, amount: 300, time: t + 1 }] });
    expect(retry.body.entries).toEqual([{ txn_no: 'A1', status: 'duplicate' }, { txn_no: 'A2', status: 'applied', balance: 0 }]);
  });

  it('takes a member code that was valid when the device sold, once', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 400);
    await settled(shop, await shop.say(user, '會員'));
    const code = /"text":"(\d{4} \d{4} \d{4} \d{4})"/.exec(JSON.stringify(shop.line.deliveredTo(user).at(-1)!.messages))![1]!;
    const answer = await upload({
      device_id: 'kiosk-3',
      entries: [
        { txn_no: 'C1', member_code: code, amount: 120, time: now() },
        { txn_no: 'C2', member_code: code, amount: 80, time: now() },
      ],
    });
    expect(answer.body.entries).toEqual([
      { txn_no: 'C1', status: 'applied', balance: 280 },
      { txn_no: 'C2', status: 'rejected', reason: 'code-used' },
    ]);
  });

  it('refuses a bad signature, an old timestamp and a replayed body, with nothing applied', async () => {
    const user = newUserId();
    await credit(shop, user, 'wallet', 1000);
    const batch = { device_id: 'kiosk-4', entries: [{ txn_no: 'R1', user_id: user, amount: 100, time: now() }] };
    const rows = await journalRows();

    expect(await upload(batch, { secret: 'not-the-secret' })).toMatchObject({ status: 401, body: { error: 'bad-signature' } });
    expect(await upload(batch, { ts: now() - 301 })).toMatchObject({ status: 401, body: { error: 'timestamp-out-of-window' } });
    expect(await upload(batch, { ts: now() + 301 })).toMatchObject({ status: 401, body: { error: 'timestamp-out-of-window' } });
    expect(await upload(batch, { signature: 'zz' })).toMatchObject({ status: 401, body: { error: 'signature-missing' } });
    // A body changed after signing fails the signature.
    const signed = JSON.stringify(batch);
    const tampered = await upload(null, { raw: signed.replace('"amount":100', '"amount":1'), signature: signPosBody(SECRET, now(), signed) });
    expect(tampered.status).toBe(401);
    expect(await journalRows()).toBe(rows);
    expect(await walletOf(shop, user)).toBe(1000);

    const ok = await upload(batch);
    expect(ok.status).toBe(200);
    const replay = await fetch(`${shop.url}/api/pos/journal`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-pos-timestamp': String(ok.ts), 'x-pos-signature': ok.signature },
      body: ok.raw,
    });
    expect(replay.status).toBe(409);
    expect(await walletOf(shop, user)).toBe(900);
    expect(await db()('pos_requests').where({ signature: ok.signature }).count<{ n: number }[]>({ n: '*' })).toEqual([{ n: 1 }]);

    expect(await upload({ device_id: 'kiosk-4', entries: [] })).toMatchObject({ status: 400, body: { error: 'invalid-batch' } });
    expect(await upload(null, { raw: '{"device_id":' })).toMatchObject({ status: 400, body: { error: 'invalid-json' } });
  });

  it('is off (404) without POS_API_SECRET', async () => {
    const app = createApp({ ...shop.c, config: { ...shop.c.config, posApiSecret: null } });
    const server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = await upload({ device_id: 'x', entries: [] }, { url });
      expect(r.status).toBe(404);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('invariants hold: ledger sums and no negative balance', async () => {
    expect(await checkInvariants(db())).toEqual([]);
  });
});
