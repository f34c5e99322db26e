import crypto from 'node:crypto';
import { DeliveryCheckout, maskPhone, orderDelivery } from '../../src/domain/delivery';
import type { Order } from '../../src/domain/orders';
import { parsePostback, postbackData } from '../../src/line/command-parser';
import { cspFor, deliveryFormPage } from '../../src/web/delivery-page';

const order = (extra: Partial<Order> = {}): Order => ({
  id: 1, order_no: 'L2612050001', line_user_id: 'U1', status: 'pending_payment', total: 680, item_count: 1, payment_method: null,
  hold_expires_at: new Date(Date.now() + 60_000), cart_id: 1, cart_version: 1, paid_amount: 0, refunded_amount: 0, tracking_no: null,
  created_at: new Date(), paid_at: null, shipped_at: null, ...extra,
});

describe('delivery rules (pure parts)', () => {
  test('masked phone keeps the first 4 and last 3 digits', () => {
    expect(maskPhone('0912345678')).toBe('0912***678');
    expect(maskPhone('123')).toBe('***');
  });

  test('fees: home always, store pickup per chain only with logistics, free at the threshold', () => {
    const deps = { uow: {} as never, notifier: {} as never, publicBaseUrl: 'https://shop.example.com', paymentMethods: () => [] };
    const homeOnly = new DeliveryCheckout({ ...deps, shipping: { homeFee: 100, cvsFee: 60, freeOver: 1000 }, logistics: null });
    expect(homeOnly.options().map((o) => o.key)).toEqual(['home']);
    const withCvs = new DeliveryCheckout({ ...deps, shipping: { homeFee: 100, cvsFee: 60, freeOver: 1000 }, logistics: { subTypes: ['UNIMARTC2C', 'FAMIC2C'] } as never });
    expect(withCvs.options().map((o) => [o.key, o.fee])).toEqual([['home', 100], ['UNIMARTC2C', 60], ['FAMIC2C', 60]]);
    const cvs = withCvs.option('FAMIC2C')!;
    expect(withCvs.feeFor(cvs, 999)).toBe(60);
    expect(withCvs.feeFor(cvs, 1000)).toBe(0);
    expect(withCvs.option('OKMARTC2C')).toBeUndefined();
  });

  test('an order has delivery details only once they are complete', () => {
    expect(orderDelivery(order({ delivery_method: 'cvs', store_id: '131386' }))).toBeNull();
    expect(orderDelivery(order({ delivery_method: 'home', recipient_name: '王小美', recipient_phone: '0912345678', recipient_address: '台北市', delivery_ready_at: new Date() }))).toMatchObject({ method: 'home', recipientName: '王小美' });
  });

  test('the dlv postback round-trips and refuses junk', () => {
    for (const method of [null, 'home', 'UNIMARTC2C', 'last']) {
      const data = postbackData({ action: 'dlv', orderNo: 'L2612050001', method });
      expect(data.length).toBeLessThanOrEqual(300);
      expect(parsePostback(data)).toEqual({ action: 'dlv', orderNo: 'L2612050001', method });
    }
    expect(parsePostback('action=dlv&o=L2612050001&m=%3Cx%3E')).toEqual({ action: 'invalid' });
    expect(parsePostback('action=dlv&m=home')).toEqual({ action: 'invalid' });
  });

  test('the page escapes what the shopper typed and its CSP allows only its own inline style, by hash', () => {
    const html = deliveryFormPage({
      kind: 'editable', ref: 'r'.repeat(20), csrf: 'c"srf', order: order(), items: { lines: [], adjustments: [] },
      options: [{ key: 'home', method: 'home', subType: null, fee: 100, effectiveFee: 100 }],
      values: { key: 'home', name: '<script>alert(1)</script>', phone: '"><img src=x>', zip: '', address: '</textarea><b>x' }, store: null, ready: false,
    }, { errors: { phone: '手機號碼格式錯誤' } });
    expect(html).not.toContain('<script>alert(1)');
    expect(html).not.toContain('"><img');
    expect(html).not.toContain('</textarea><b>');
    expect(html).toContain('value="c&quot;srf"');
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const csp = cspFor(html);
    expect(csp).toContain(`style-src 'sha256-${crypto.createHash('sha256').update(style).digest('base64')}'`);
    expect(csp).toContain("script-src 'none'");
    expect(csp).toContain("form-action 'self'");
  });
});
