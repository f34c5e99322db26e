import { classifyRejection, dropOffCode, newLogisticsTradeNo, newMapToken } from '../../src/gateways/ecpay-logistics/ecpay-logistics-client';
import { goodsNameFor, sanitizeGoodsName } from '../../src/gateways/ecpay-logistics/goods-name';
import { checkAddress, checkCellPhone, checkContactName, checkRecipient, nameWidth } from '../../src/gateways/ecpay-logistics/recipient';
import { GROUP_OF_CODE, mapStatus, type ShipmentState } from '../../src/gateways/ecpay-logistics/status-codes';
import { parseSubTypeList } from '../../src/gateways/ecpay-logistics/sub-types';
import { DELIVERY_ERRORS } from '../../src/texts';

describe('recipient names as ECPay counts them (Chinese 2, letter 1; 4-10; letters only)', () => {
  test.each([
    ['王小美', '王小美'],
    ['歐陽', '歐陽'],
    ['司馬相如子', '司馬相如子'],
    ['Mark', 'Mark'],
    ['MarkHarris', 'MarkHarris'],
    ['林Amy', '林Amy'],
    ['  王小美 ', '王小美'],
    ['ＡＭＹＬ', 'AMYL'],
  ])('%j is accepted as %j', (input, value) => {
    expect(checkContactName(input)).toEqual({ ok: true, value });
  });

  test.each([
    ['王', DELIVERY_ERRORS.nameLength],
    ['Amy', DELIVERY_ERRORS.nameLength],
    ['司馬相如子虛', DELIVERY_ERRORS.nameLength],
    ['MarkHarrison', DELIVERY_ERRORS.nameLength],
    ['王小美2', DELIVERY_ERRORS.nameChars],
    ['Mark Lee', DELIVERY_ERRORS.nameChars],
    ['王.小美', DELIVERY_ERRORS.nameChars],
    ['小美❤', DELIVERY_ERRORS.nameChars],
    ['ㄅㄆㄇㄈ', DELIVERY_ERRORS.nameChars],
    ['', DELIVERY_ERRORS.nameRequired],
    ['   ', DELIVERY_ERRORS.nameRequired],
  ])('%j is refused with a zh-TW message', (input, message) => {
    expect(checkContactName(input)).toEqual({ ok: false, message });
  });

  test('width counts a Chinese character as 2 and an ASCII letter as 1', () => {
    expect(nameWidth('王小美')).toBe(6);
    expect(nameWidth('MarkHarrison')).toBe(12);
    expect(nameWidth('林Amy')).toBe(5);
  });
});

describe('mobile numbers and addresses', () => {
  test.each([
    ['0912345678', '0912345678'],
    ['0912-345-678', '0912345678'],
    ['0912 345 678', '0912345678'],
    ['０９１２３４５６７８', '0912345678'],
    ['+886 912 345 678', '0912345678'],
    ['+886-0912-345-678', '0912345678'],
  ])('%j becomes %j', (input, value) => {
    expect(checkCellPhone(input)).toEqual({ ok: true, value });
  });

  test.each(['0212345678', '091234567', '09123456789', '0912abc678', '886912345678'])('%j is not a mobile number', (input) => {
    expect(checkCellPhone(input)).toEqual({ ok: false, message: DELIVERY_ERRORS.phoneFormat });
  });

  test('an empty phone and an empty or absurd address get their own messages', () => {
    expect(checkCellPhone(' ')).toEqual({ ok: false, message: DELIVERY_ERRORS.phoneRequired });
    expect(checkAddress('')).toEqual({ ok: false, message: DELIVERY_ERRORS.addressRequired });
    expect(checkAddress('台北')).toEqual({ ok: false, message: DELIVERY_ERRORS.addressLength(5, 100) });
    expect(checkAddress('台'.repeat(101)).ok).toBe(false);
    expect(checkAddress(' 臺北市中正區\n重慶南路一段 122 號 ')).toEqual({ ok: true, value: '臺北市中正區 重慶南路一段 122 號' });
  });

  test('checkRecipient reports every problem at once and asks for an address only for home delivery', () => {
    expect(checkRecipient({ name: '王1', phone: '12', address: '' }, { needAddress: true })).toEqual({
      ok: false,
      errors: { name: DELIVERY_ERRORS.nameChars, phone: DELIVERY_ERRORS.phoneFormat, address: DELIVERY_ERRORS.addressRequired },
    });
    expect(checkRecipient({ name: '王小美', phone: '0933-222-111' }, { needAddress: false })).toEqual({
      ok: true,
      value: { name: '王小美', phone: '0933222111' },
    });
    expect(checkRecipient({ name: '王小美', phone: '0933222111', address: '臺北市中正區重慶南路一段122號' }, { needAddress: true })).toEqual({
      ok: true,
      value: { name: '王小美', phone: '0933222111', address: '臺北市中正區重慶南路一段122號' },
    });
  });
});

describe('GoodsName', () => {
  test("the 18 forbidden characters and control characters are removed; ECPay's fallback when nothing is left", () => {
    expect(sanitizeGoodsName("^'`!@#%&*+\\\"<>|_[]")).toBe('');
    expect(sanitizeGoodsName('鐵觀音 [特級] 100g\n禮盒')).toBe('鐵觀音 特級 100g 禮盒');
    expect(goodsNameFor(['<>'])).toBe('網路商品一批');
    expect(goodsNameFor([])).toBe('網路商品一批');
  });

  test('one line is its name; several become "<first>等<n>件"; always within 50 characters', () => {
    expect(goodsNameFor(['珍珠奶茶'])).toBe('珍珠奶茶');
    expect(goodsNameFor(['珍珠奶茶', '雞排'])).toBe('珍珠奶茶等2件');
    const long = goodsNameFor(['茶'.repeat(80), '雞排', '薯條']);
    expect([...long].length).toBeLessThanOrEqual(50);
    expect(long.endsWith('等3件')).toBe(true);
    expect([...goodsNameFor(['😀'.repeat(60)])].length).toBe(50);
  });
});

describe('status codes → shipment states (spec §7.3)', () => {
  const path = (subType: string, codes: number[]) => codes.map((c) => mapStatus(subType, c).state);

  test('each chain\'s happy path goes created → shipped → arrived → picked up (K4 history sheet)', () => {
    const happy: Array<[string, number[], ShipmentState[]]> = [
      ['UNIMARTC2C', [300, 2068, 2030, 2073, 2067], ['created', 'shipped', 'shipped', 'arrived_at_store', 'picked_up']],
      ['FAMIC2C', [300, 3032, 3024, 3018, 3022], ['created', 'shipped', 'shipped', 'arrived_at_store', 'picked_up']],
      ['HILIFEC2C', [300, 2001, 3032, 3024, 3018, 3022], ['created', 'created', 'shipped', 'shipped', 'arrived_at_store', 'picked_up']],
      ['OKMARTC2C', [3032, 2030, 2073, 3022], ['shipped', 'shipped', 'arrived_at_store', 'picked_up']],
      ['UNIMART', [300, 310, 2024, 2030, 2063, 2067], ['created', 'created', 'created', 'shipped', 'arrived_at_store', 'picked_up']],
      ['FAMI', [300, 310, 3024, 3018, 3022], ['created', 'created', 'shipped', 'arrived_at_store', 'picked_up']],
      ['HILIFE', [300, 2001, 3024, 3018, 3022], ['created', 'created', 'shipped', 'arrived_at_store', 'picked_up']],
    ];
    for (const [subType, codes, states] of happy) expect(path(subType, codes)).toEqual(states);
    expect(mapStatus('FAMIC2C', 3022)).toEqual({ state: 'picked_up', group: 'picked_up', terminal: true });
  });

  test('returns, store problems, exceptions and cancellation', () => {
    expect(mapStatus('UNIMARTC2C', 2074)).toEqual({ state: 'returned', group: 'unclaimed', terminal: false });
    expect(mapStatus('UNIMARTC2C', 2085).group).toBe('unclaimed');
    expect(mapStatus('FAMIC2C', 3019)).toEqual({ state: 'returned', group: 'returned_to_sender_store', terminal: false });
    expect(mapStatus('FAMIC2C', 3023)).toEqual({ state: 'returned', group: 'return_collected', terminal: true });
    expect(mapStatus('FAMIC2C', 7035)).toEqual({ state: 'returned', group: 'seller_must_act', terminal: false });
    for (const [subType, code] of [['UNIMARTC2C', 2104], ['FAMIC2C', 7011], ['HILIFEC2C', 7011], ['OKMARTC2C', 7101], ['UNIMART', 2037], ['OKMARTC2C', 7255]] as const) {
      expect(mapStatus(subType, code).state).toBe('store_closed');
    }
    expect(mapStatus('UNIMARTC2C', 2105).state).toBe('store_changed');
    expect(mapStatus('FAMIC2C', 7006).state).toBe('failed');
    expect(mapStatus('UNIMARTC2C', 7013).state).toBe('failed');
    expect(mapStatus('UNIMARTC2C', 9999)).toEqual({ state: 'cancelled', group: 'cancelled', terminal: true });
  });

  test('codes arrive as strings too; unknown codes, garbage and home-delivery sub-types are unknown', () => {
    expect(mapStatus('UNIMARTC2C', ' 2067 ').state).toBe('picked_up');
    expect(mapStatus('UNIMARTC2C', 1234).state).toBe('unknown');
    expect(mapStatus('UNIMARTC2C', 'abc').state).toBe('unknown');
    expect(mapStatus('UNIMARTC2C', '').state).toBe('unknown');
    expect(mapStatus('TCAT', 3022).state).toBe('unknown');
    expect(mapStatus('HILIFEC2C', 5001).state).toBe('unknown');
  });

  test('the table holds a code from every row of §7.3 (building it throws on a code listed in two groups)', () => {
    for (const code of [311, 2041, 2095, 3029, 2098, 2093, 3031, 2069, 2044, 2097, 2103, 2102, 4002, 7038]) {
      expect(GROUP_OF_CODE.has(code)).toBe(true);
    }
  });
});

describe('refusals, sub-type lists, trade numbers', () => {
  test.each([
    ['CheckMacValue驗證錯誤', 'BAD_MAC'],
    ['MerchantTradeNo重複', 'DUPLICATE_TRADE_NO'],
    ['廠商訂單編號重覆', 'DUPLICATE_TRADE_NO'],
    ['ReceiverStoreID Is Null', 'STORE'],
    ['門市已關轉', 'STORE'],
    ['TimeStamp Is Expired', 'TIMESTAMP'],
    ['查無此筆物流訂單', 'NOT_FOUND'],
    ['GoodsAmount Error', 'OTHER'],
  ])('%j is classified %s', (message, reason) => {
    expect(classifyRejection(message)).toBe(reason);
  });

  test('sub-type lists: one family, known names, no repeats', () => {
    expect(parseSubTypeList('unimartc2c, FAMIC2C')).toEqual({ ok: true, value: ['UNIMARTC2C', 'FAMIC2C'] });
    expect(parseSubTypeList('FAMI,UNIMART')).toEqual({ ok: true, value: ['FAMI', 'UNIMART'] });
    expect(parseSubTypeList('FAMI,FAMIC2C').ok).toBe(false);
    expect(parseSubTypeList('TCAT').ok).toBe(false);
    expect(parseSubTypeList('FAMIC2C,FAMIC2C').ok).toBe(false);
    expect(parseSubTypeList(' , ').ok).toBe(false);
  });

  test('trade numbers and map tokens fit ECPay\'s fields and do not repeat', () => {
    const nos = new Set(Array.from({ length: 500 }, () => newLogisticsTradeNo('L')));
    expect(nos.size).toBe(500);
    for (const no of nos) expect(no).toMatch(/^L[0-9A-Z]{1,19}$/);
    const tokens = new Set(Array.from({ length: 500 }, () => newMapToken()));
    expect(tokens.size).toBe(500);
    for (const t of tokens) expect(t).toMatch(/^[A-Za-z0-9_-]{20}$/);
  });

  test('the 7-ELEVEN kiosk code is CVSPaymentNo + CVSValidationNo; other chains use CVSPaymentNo', () => {
    expect(dropOffCode('UNIMARTC2C', 'G6544529', '7175')).toBe('G65445297175');
    expect(dropOffCode('FAMIC2C', '09936343518')).toBe('09936343518');
  });
});
