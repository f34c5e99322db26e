import { parseCommand, parsePostback, postbackData } from '../../src/line/command-parser';

describe('chat commands', () => {
  test.each([
    ['商品', { kind: 'menu' }],
    ['MENU', { kind: 'menu' }],
    [' products ', { kind: 'menu' }],
    ['購物車', { kind: 'cart' }],
    ['Cart', { kind: 'cart' }],
    ['結帳', { kind: 'checkout' }],
    ['checkout', { kind: 'checkout' }],
    ['訂單', { kind: 'orders' }],
    ['orders', { kind: 'orders' }],
    ['說明', { kind: 'help' }],
    ['HELP', { kind: 'help' }],
    ['訂單 L2611221001', { kind: 'order', orderNo: 'L2611221001' }],
    ['取消 l2611221001', { kind: 'cancel', orderNo: 'L2611221001' }],
    ['cancel L2611221001', { kind: 'cancel', orderNo: 'L2611221001' }],
    ['後台', { kind: 'owner-admin' }],
    ['Admin', { kind: 'owner-admin' }],
    ['後台 x', { kind: 'unknown' }],
  ])('%s', (text, cmd) => expect(parseCommand(text)).toEqual(cmd));

  test('the seed grammar: cart <productId or SKU> <qty | +n | -n>, full-width digits and spaces accepted', () => {
    expect(parseCommand('cart 3 2')).toEqual({ kind: 'cart-set', ref: '3', change: { op: 'set', qty: 2 } });
    expect(parseCommand('cart TEA-001 +1')).toEqual({ kind: 'cart-set', ref: 'TEA-001', change: { op: 'add', delta: 1 } });
    expect(parseCommand('CART tea-001 -2')).toEqual({ kind: 'cart-set', ref: 'tea-001', change: { op: 'add', delta: -2 } });
    expect(parseCommand('ｃａｒｔ　１　＋２')).toEqual({ kind: 'cart-set', ref: '1', change: { op: 'add', delta: 2 } });
    expect(parseCommand('cart 1 0')).toEqual({ kind: 'cart-set', ref: '1', change: { op: 'set', qty: 0 } });
    expect(parseCommand('購物車 １ ３')).toEqual({ kind: 'cart-set', ref: '1', change: { op: 'set', qty: 3 } });
  });

  test('bad cart input is recognised as such, never thrown', () => {
    expect(parseCommand('cart')).toEqual({ kind: 'cart' });
    expect(parseCommand('cart 1')).toEqual({ kind: 'cart-usage' });
    expect(parseCommand('cart 1 2 3')).toEqual({ kind: 'cart-usage' });
    expect(parseCommand('cart 1 two')).toEqual({ kind: 'qty-invalid' });
    expect(parseCommand('cart 1 1.5')).toEqual({ kind: 'qty-invalid' });
    expect(parseCommand('cart 1 9999999')).toEqual({ kind: 'qty-invalid' });
    expect(parseCommand('cart 1 --1')).toEqual({ kind: 'qty-invalid' });
    expect(parseCommand('')).toEqual({ kind: 'unknown' });
    expect(parseCommand('🍵🍵🍵')).toEqual({ kind: 'unknown' });
    expect(parseCommand('訂單 not-an-order')).toEqual({ kind: 'unknown' });
  });

  test('owner commands parse (the bot checks who is asking)', () => {
    expect(parseCommand('今日訂單')).toEqual({ kind: 'owner-today' });
    expect(parseCommand('出貨 L2611221001 123456789')).toEqual({ kind: 'owner-ship', orderNo: 'L2611221001', tracking: '123456789' });
    expect(parseCommand('出貨 L2611221001')).toEqual({ kind: 'owner-ship', orderNo: 'L2611221001', tracking: null });
    expect(parseCommand('出貨')).toEqual({ kind: 'owner-usage', which: 'ship' });
    // A tracking number is letters, digits and dashes, at most 60, as the back office takes it (shown, copied, put in a link).
    expect(parseCommand('出貨 L2611221001 ｅｅ１２３４５６７８９ＴＷ')).toEqual({ kind: 'owner-ship', orderNo: 'L2611221001', tracking: 'EE123456789TW' });
    expect(parseCommand(`出貨 L2611221001 ${'9'.repeat(61)}`)).toEqual({ kind: 'owner-usage', which: 'ship' });
    expect(parseCommand('出貨 L2611221001 <script>')).toEqual({ kind: 'owner-usage', which: 'ship' });
    expect(parseCommand('待出貨')).toEqual({ kind: 'owner-to-ship' });
    expect(parseCommand('庫存 tea-001 20')).toEqual({ kind: 'owner-stock-set', sku: 'TEA-001', qty: 20 });
    expect(parseCommand('庫存')).toEqual({ kind: 'owner-stock-list' });
    expect(parseCommand('庫存 TEA-001 -1')).toEqual({ kind: 'owner-usage', which: 'stock' });
    expect(parseCommand('退款 L2611221001 500')).toEqual({ kind: 'owner-refund', orderNo: 'L2611221001', amount: 500 });
    expect(parseCommand('退款 L2611221001')).toEqual({ kind: 'owner-refund', orderNo: 'L2611221001', amount: null });
    expect(parseCommand('完成 L2611221001')).toEqual({ kind: 'owner-complete', orderNo: 'L2611221001' });
  });
});

describe('postback data', () => {
  test('round-trips every action and stays far below 300 characters', () => {
    const all = [
      { action: 'menu', page: 2 },
      { action: 'add', productId: 12 },
      { action: 'inc', productId: 12 },
      { action: 'dec', productId: 12 },
      { action: 'cart' },
      { action: 'checkout', cartVersion: 7 },
      { action: 'pay', orderNo: 'L2611221001', method: 'ecpay-credit' },
      { action: 'order', orderNo: 'L2611221001' },
      { action: 'cancel', orderNo: 'L2611221001' },
    ] as const;
    for (const pb of all) {
      const data = postbackData(pb);
      expect(data.length).toBeLessThanOrEqual(300);
      expect(parsePostback(data)).toEqual(pb);
    }
  });

  test('tampered or stale data is "invalid", never an exception', () => {
    for (const d of ['', 'action=add', 'action=add&p=-1', 'action=add&p=abc', 'action=pay&o=L1', 'action=nope', 'x'.repeat(301), 'action=menu&page=0', '%%%']) {
      expect(parsePostback(d)).toEqual({ action: 'invalid' });
    }
  });
});
