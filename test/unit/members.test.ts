import { parseConfig } from '../../src/config';
import { codeProblem, normalizeCode, sealCode, unsealCode } from '../../src/domain/members/member-codes';
import { checkSignature, signPosBody } from '../../src/domain/members/pos-journal';
import { divCeil, mulFloor, pointsFor, proportion, redeemOffer, tierDiscount, tierFor } from '../../src/domain/members/rules';
import { parseCommand, parsePostback, postbackData } from '../../src/line/command-parser';
import { ADJUSTMENT_LABEL, M, zhe } from '../../src/texts';

const base = { DATABASE_URL: 'postgres://x@127.0.0.1/db', LINE_CHANNEL_SECRET: 's3cret', LINE_CHANNEL_ACCESS_TOKEN: 'tok3n' };
const cfg = parseConfig(base).members;

describe('member settings', () => {
  test('defaults follow the contract', () => {
    expect(cfg.pointsPerTwd).toEqual({ num: 1, den: 100 });
    expect(cfg.twdPerPoint).toEqual({ num: 1, den: 1 });
    expect(cfg.maxPointsShare).toEqual({ num: 5, den: 10 });
    expect(cfg.tiers.map((t) => [t.name, t.minPoints, t.discountPercent])).toEqual([['普通', 0, 0], ['銀卡', 1000, 5], ['金卡', 5000, 10], ['鑽石', 10000, 15]]);
    expect(cfg.walletTopupAmounts).toEqual([500, 1000, 2000]);
    expect(parseConfig(base).posApiSecret).toBeNull();
  });

  test.each([
    [{ MEMBER_TIERS: '銀卡:1000:5' }, /^MEMBER_TIERS is invalid \(needs a tier at 0 points/],
    [{ MEMBER_TIERS: '普通:0:0,銀卡:x:5' }, /^MEMBER_TIERS is invalid/],
    [{ MEMBER_TIERS: '普通:0:0,銀卡:1000:100' }, /^MEMBER_TIERS is invalid/],
    [{ POINTS_PER_TWD: '1e-2' }, /^POINTS_PER_TWD is invalid/],
    [{ POINTS_TWD_PER_POINT: '0' }, /^POINTS_TWD_PER_POINT is invalid/],
    [{ POINTS_MAX_SHARE: '1.01' }, /^POINTS_MAX_SHARE is invalid/],
    [{ WALLET_TOPUP_AMOUNTS: '500,abc' }, /^WALLET_TOPUP_AMOUNTS is invalid/],
  ])('a malformed member setting is named (%#)', (env, re) => {
    expect(() => parseConfig({ ...base, ...env })).toThrow(re);
  });

  test('tiers are sorted by points; POS_API_SECRET turns the journal on', () => {
    const c = parseConfig({ ...base, MEMBER_TIERS: 'VIP:300:20, 一般:0:0', POS_API_SECRET: ' k ' });
    expect(c.members.tiers.map((t) => t.name)).toEqual(['一般', 'VIP']);
    expect(c.posApiSecret).toBe('k');
  });
});

describe('member rules (integers only)', () => {
  test('rates are exact fractions: 0.29 × 100 is 29, not 28.999…', () => {
    expect(mulFloor(100, { num: 29, den: 100 })).toBe(29);
    expect(0.29 * 100).toBeLessThan(29); // what floating point would have given
    expect(mulFloor(99_999_999, { num: 1, den: 100 })).toBe(999_999);
    expect(divCeil(340, { num: 1, den: 1 })).toBe(340);
    expect(divCeil(1, { num: 1, den: 10 })).toBe(10);
  });

  test('points: 1 per NT$100 by default, whole points, rounded down', () => {
    expect([0, 99, 100, 199, 200, 1280].map((n) => pointsFor(n, cfg))).toEqual([0, 0, 1, 1, 2, 12]);
  });

  test.each([
    [0, '普通', '銀卡', 1000],
    [999, '普通', '銀卡', 1],
    [1000, '銀卡', '金卡', 4000],
    [4999, '銀卡', '金卡', 1],
    [5000, '金卡', '鑽石', 5000],
    [9999, '金卡', '鑽石', 1],
    [10000, '鑽石', null, 0],
  ])('%i points earned → %s (next %s in %i)', (earned, tier, next, needed) => {
    const s = tierFor(earned, cfg.tiers);
    expect(s.tier.name).toBe(tier);
    expect(s.next?.tier.name ?? null).toBe(next);
    if (next) expect(s.next!.needed).toBe(needed);
  });

  test('the tier discount is a whole NT$, never more than its percentage', () => {
    const [normal, silver, gold, diamond] = cfg.tiers;
    expect([normal!, silver!, gold!, diamond!].map((t) => tierDiscount(680, t))).toEqual([0, 34, 68, 102]);
    expect(tierDiscount(19, silver!)).toBe(0);
    expect(tierDiscount(999, diamond!)).toBe(149);
  });

  test('redeeming: at most POINTS_MAX_SHARE of the order, at most what the points are worth, never the whole order', () => {
    expect(redeemOffer(680, 500, cfg)).toEqual({ points: 340, amount: 340 });
    expect(redeemOffer(680, 12, cfg)).toEqual({ points: 12, amount: 12 });
    expect(redeemOffer(1, 500, cfg)).toBeNull();
    expect(redeemOffer(680, 0, cfg)).toBeNull();
    const all = { ...cfg, maxPointsShare: { num: 1, den: 1 } };
    expect(redeemOffer(680, 5000, all)).toEqual({ points: 679, amount: 679 });
    // 10 points = NT$1: the points needed round up, the discount down.
    const tenth = { ...cfg, twdPerPoint: { num: 1, den: 10 } };
    expect(redeemOffer(680, 1234, tenth)).toEqual({ points: 1230, amount: 123 });
  });

  test('proportional take-backs add up to the whole at the last refund', () => {
    expect(proportion(12, 500, 1280)).toBe(4);
    expect(proportion(12, 1280, 1280)).toBe(12);
    expect(proportion(12, 2000, 1280)).toBe(12);
    expect(proportion(12, 0, 1280)).toBe(0);
  });

  test('labels as Taiwanese shops write them', () => {
    expect([5, 10, 15, 12].map(zhe)).toEqual(['95 折', '9 折', '85 折', '88 折']);
    expect(ADJUSTMENT_LABEL.tier('金卡', 10)).toBe('金卡 9 折');
    expect(ADJUSTMENT_LABEL.points(1200)).toBe('點數折抵 1,200 點');
    expect(M.code('1234567890123456')).toBe('1234 5678 9012 3456');
  });
});

describe('member codes', () => {
  test('typed codes are normalised (spaces, dashes, full width) and must be 16 digits', () => {
    expect(normalizeCode('1234 5678 9012 3456')).toBe('1234567890123456');
    expect(normalizeCode('１２３４-５６７８-９０１２-３４５６')).toBe('1234567890123456');
    expect(normalizeCode('123456789012345')).toBeNull();
    expect(normalizeCode('12345678901234567')).toBeNull();
  });

  test('the sealed code opens only with its picture reference', () => {
    const sealed = sealCode('1234567890123456', 'ref-a');
    expect(sealed.toString('utf8')).not.toContain('1234567890123456');
    expect(unsealCode(sealed, 'ref-a')).toBe('1234567890123456');
    expect(unsealCode(sealed, 'ref-b')).toBeNull();
  });

  test('a code pays while unused, unreplaced and within its 15 minutes (at the given time)', () => {
    const t0 = new Date('2026-12-04T10:00:00Z');
    const row = { created_at: t0, expires_at: new Date(t0.getTime() + 15 * 60_000), used_at: null, replaced_at: null };
    expect(codeProblem(row, new Date(t0.getTime() + 60_000))).toBeNull();
    expect(codeProblem(row, row.expires_at)).toBe('expired');
    expect(codeProblem({ ...row, used_at: t0 }, t0)).toBe('used');
    expect(codeProblem({ ...row, replaced_at: new Date(t0.getTime() + 5 * 60_000) }, new Date(t0.getTime() + 60_000))).toBeNull();
    expect(codeProblem({ ...row, replaced_at: new Date(t0.getTime() + 5 * 60_000) }, new Date(t0.getTime() + 6 * 60_000))).toBe('replaced');
    expect(codeProblem(undefined, t0)).toBe('unknown');
  });
});

describe('store device signatures', () => {
  const body = Buffer.from('{"device_id":"d","entries":[]}');
  const nowMs = 1_800_000_000_000;
  const ts = String(nowMs / 1000);
  test('HMAC-SHA256 of `<timestamp>.<body>`, hex, within 5 minutes', () => {
    const sig = signPosBody('k', Number(ts), body);
    expect(sig).toMatch(/^[0-9a-f]{64}$/);
    expect(checkSignature('k', ts, sig, body, nowMs)).toBe('ok');
    expect(checkSignature('k', ts, sig.toUpperCase(), body, nowMs)).toBe('ok');
    expect(checkSignature('other', ts, sig, body, nowMs)).toBe('bad-signature');
    expect(checkSignature('k', ts, sig, Buffer.from(body.toString().replace('"d"', '"e"')), nowMs)).toBe('bad-signature');
    expect(checkSignature('k', ts, sig, body, nowMs + 301_000)).toBe('stale');
    expect(checkSignature('k', undefined, sig, body, nowMs)).toBe('missing');
    expect(checkSignature('k', ts, 'abc', body, nowMs)).toBe('missing');
  });
});

describe('member chat commands and postbacks', () => {
  test.each([
    ['點數', { kind: 'points' }],
    ['POINTS', { kind: 'points' }],
    ['錢包', { kind: 'wallet' }],
    ['wallet', { kind: 'wallet' }],
    ['餘額', { kind: 'wallet' }],
    ['會員', { kind: 'member' }],
    ['Member', { kind: 'member' }],
    ['收款', { kind: 'owner-usage', which: 'charge' }],
    ['收款 1234567890123456 350', { kind: 'owner-charge', code: '1234567890123456', amount: 350 }],
    ['收款 1234 5678 9012 3456 350', { kind: 'owner-charge', code: '1234567890123456', amount: 350 }],
    ['收款　１２３４５６７８９０１２３４５６　３５０', { kind: 'owner-charge', code: '1234567890123456', amount: 350 }],
    ['收款 1234567890123456', { kind: 'owner-usage', which: 'charge' }],
    ['收款 1234567890123456 NT$350', { kind: 'owner-usage', which: 'charge' }],
  ])('%s', (text, cmd) => expect(parseCommand(text)).toEqual(cmd));

  test('postbacks round-trip and stay within 300 characters', () => {
    for (const pb of [
      { action: 'redeem', orderNo: 'L2612041001' },
      { action: 'topup', amount: 2000 },
      { action: 'tpay', topupId: 123456789, method: 'ecpay-credit' },
      { action: 'wallet' },
      { action: 'points' },
      { action: 'member' },
    ] as const) {
      const data = postbackData(pb);
      expect(data.length).toBeLessThanOrEqual(300);
      expect(parsePostback(data)).toEqual(pb);
    }
    expect(parsePostback('action=topup&a=-5')).toEqual({ action: 'invalid' });
    expect(parsePostback('action=tpay&t=1')).toEqual({ action: 'invalid' });
    expect(parsePostback('action=redeem&o=nope')).toEqual({ action: 'invalid' });
  });
});
