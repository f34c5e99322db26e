import { ConfigError, describeConfig, parseConfig } from '../../src/config';

const base = { DATABASE_URL: 'postgres://x@127.0.0.1/db', LINE_CHANNEL_SECRET: 's3cret', LINE_CHANNEL_ACCESS_TOKEN: 'tok3n' };

describe('config', () => {
  test('defaults follow the contract and the result is frozen', () => {
    const c = parseConfig(base);
    expect(c.port).toBe(3000);
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(c.publicBaseUrl).toBe('http://localhost:3000');
    expect(c.line.apiBaseUrl).toBe('https://api.line.me');
    expect(c.holdMinutes).toEqual({ default: 30, card: 60, atm: 4320, cvs: 10080 });
    expect(c.reconcileAfterMinutes).toBe(40);
    expect(c.reconcileEveryMinutes).toBe(5);
    expect(c.workerMetricsPort).toBeNull();
    expect(parseConfig({ ...base, WORKER_METRICS_PORT: '9464' }).workerMetricsPort).toBe(9464);
    expect(c.sinopac).toBeNull();
    expect(c.ecpay).toBeNull();
    expect(c.ecpayLogistics).toBeNull();
    expect(c.shipping).toEqual({ homeFee: 100, cvsFee: 60, freeOver: 1000 });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.holdMinutes)).toBe(true);
  });

  test.each([
    [{ ...base, DATABASE_URL: undefined }, /^DATABASE_URL is required$/],
    [{ ...base, LINE_CHANNEL_SECRET: '' }, /^LINE_CHANNEL_SECRET is required$/],
    [{ ...base, PORT: 'eighty' }, /^PORT is invalid/],
    [{ ...base, HOLD_MINUTES_CARD: '-5' }, /^HOLD_MINUTES_CARD is invalid/],
    [{ ...base, LINE_API_BASE_URL: 'not a url' }, /^LINE_API_BASE_URL is invalid/],
    [{ ...base, WORKER_METRICS_PORT: '70000' }, /^WORKER_METRICS_PORT is invalid/],
    [{ ...base, WORKER_METRICS_PORT: 'nine' }, /^WORKER_METRICS_PORT is invalid/],
  ])('a missing or malformed setting is named in one line (%#)', (env, re) => {
    expect(() => parseConfig(env as Record<string, string>)).toThrow(ConfigError);
    expect(() => parseConfig(env as Record<string, string>)).toThrow(re);
  });

  test('decimal hold minutes are allowed (tests use seconds)', () => {
    expect(parseConfig({ ...base, HOLD_MINUTES_DEFAULT: '0.05' }).holdMinutes.default).toBe(0.05);
  });

  test('LINE API base URL is reduced to its origin (the SDK drops paths anyway)', () => {
    expect(parseConfig({ ...base, LINE_API_BASE_URL: 'http://127.0.0.1:4010/line/' }).line.apiBaseUrl).toBe('http://127.0.0.1:4010');
  });

  test('a provider with all settings absent is off; a partly configured one stops the process naming what is missing', () => {
    expect(() => parseConfig({ ...base, ECPAY_MERCHANT_ID: '3002607', ECPAY_HASH_KEY: 'k' })).toThrow('ECPay is partly configured: missing ECPAY_HASH_IV');
    expect(() => parseConfig({ ...base, SINOPAC_SHOP_NO: 'NA0249_001' })).toThrow(/SinoPac is partly configured: missing SINOPAC_HASH_A1, .*SINOPAC_KEY_ID/);
    const c = parseConfig({ ...base, ECPAY_MERCHANT_ID: '3002607', ECPAY_HASH_KEY: 'k', ECPAY_HASH_IV: 'v' });
    expect(c.ecpay).toMatchObject({ merchantId: '3002607', apiBaseUrl: 'https://payment-stage.ecpay.com.tw', isProduction: false });
    expect(parseConfig({ ...base, ECPAY_MERCHANT_ID: '1', ECPAY_HASH_KEY: 'k', ECPAY_HASH_IV: 'v', ECPAY_API_BASE_URL: 'https://payment.ecpay.com.tw' }).ecpay!.isProduction).toBe(true);
    // ECPAY_CREDIT_CHECK_CODE is optional (refunds then tell the capture state from the clock).
    expect(c.ecpay!.creditCheckCode).toBeNull();
    expect(parseConfig({ ...base, ECPAY_MERCHANT_ID: '1', ECPAY_HASH_KEY: 'k', ECPAY_HASH_IV: 'v', ECPAY_CREDIT_CHECK_CODE: ' 12345678 ' }).ecpay!.creditCheckCode).toBe('12345678');
  });

  test('owner notifications, low stock, daily summary and reminders: contract defaults, and each setting parsed', () => {
    const c = parseConfig(base);
    expect(c.lowStockThreshold).toBe(5);
    expect(c.dailySummaryAt).toEqual({ hour: 21, minute: 0 });
    expect(c.ownerNotify).toEqual(['order', 'paid', 'expired', 'cancelled', 'low-stock', 'sold-out', 'alert', 'summary']);
    expect(c.remindBeforeMinutes).toEqual({ card: 10, code: 30 });
    expect(Object.isFrozen(c.ownerNotify)).toBe(true);
    const d = parseConfig({
      ...base, LOW_STOCK_THRESHOLD: '0', DAILY_SUMMARY_AT: ' 7:05 ', OWNER_NOTIFY: 'Paid, low-stock ,summary', REMIND_BEFORE_MINUTES_CARD: '0', REMIND_BEFORE_MINUTES_CODE: '0.5',
    });
    expect(d.lowStockThreshold).toBe(0);
    expect(d.dailySummaryAt).toEqual({ hour: 7, minute: 5 });
    expect(d.ownerNotify).toEqual(['paid', 'low-stock', 'summary']);
    expect(d.remindBeforeMinutes).toEqual({ card: 0, code: 0.5 });
    expect(parseConfig({ ...base, OWNER_NOTIFY: 'none' }).ownerNotify).toEqual([]);
    expect(parseConfig({ ...base, OWNER_NOTIFY: 'all' }).ownerNotify).toHaveLength(8);
  });

  test.each([
    [{ OWNER_NOTIFY: 'paid,shipping' }, /^OWNER_NOTIFY is invalid \(unknown kind shipping/],
    [{ DAILY_SUMMARY_AT: '24:00' }, /^DAILY_SUMMARY_AT is invalid/],
    [{ DAILY_SUMMARY_AT: '9pm' }, /^DAILY_SUMMARY_AT is invalid/],
    [{ LOW_STOCK_THRESHOLD: '2.5' }, /^LOW_STOCK_THRESHOLD is invalid/],
    [{ LOW_STOCK_THRESHOLD: '-1' }, /^LOW_STOCK_THRESHOLD is invalid/],
    [{ REMIND_BEFORE_MINUTES_CODE: '-1' }, /^REMIND_BEFORE_MINUTES_CODE is invalid/],
  ])('a malformed notification setting stops the process naming it (%#)', (env, re) => {
    expect(() => parseConfig({ ...base, ...env })).toThrow(re);
  });

  const LOGISTICS = {
    ECPAY_LOGISTICS_MERCHANT_ID: '2000933',
    ECPAY_LOGISTICS_HASH_KEY: 'XBERn1YOvpM9nfZc',
    ECPAY_LOGISTICS_HASH_IV: 'h1ONHk4P4yqbl5LK',
    ECPAY_LOGISTICS_SENDER_NAME: '陳大明',
    ECPAY_LOGISTICS_SENDER_CELLPHONE: '0911-222-333',
  };

  test('ECPay logistics: all five settings or none; defaults to the stage host and every C2C chain', () => {
    const c = parseConfig({ ...base, ...LOGISTICS });
    expect(c.ecpayLogistics).toEqual({
      merchantId: '2000933',
      hashKey: 'XBERn1YOvpM9nfZc',
      hashIv: 'h1ONHk4P4yqbl5LK',
      apiBaseUrl: 'https://logistics-stage.ecpay.com.tw',
      isProduction: false,
      subTypes: ['UNIMARTC2C', 'FAMIC2C', 'HILIFEC2C', 'OKMARTC2C'],
      senderName: '陳大明',
      senderCellPhone: '0911222333',
    });
    expect(Object.isFrozen(c.ecpayLogistics!.subTypes)).toBe(true);
    // Independent of the AIO payment keys.
    expect(c.ecpay).toBeNull();
    expect(() => parseConfig({ ...base, ...LOGISTICS, ECPAY_LOGISTICS_SENDER_CELLPHONE: '' })).toThrow(
      'ECPay logistics is partly configured: missing ECPAY_LOGISTICS_SENDER_CELLPHONE',
    );
    expect(() => parseConfig({ ...base, ECPAY_LOGISTICS_MERCHANT_ID: '2000933' })).toThrow(/ECPay logistics is partly configured: missing ECPAY_LOGISTICS_HASH_KEY, /);
    const prod = parseConfig({ ...base, ...LOGISTICS, ECPAY_LOGISTICS_API_BASE_URL: 'https://logistics.ecpay.com.tw/' });
    expect(prod.ecpayLogistics).toMatchObject({ apiBaseUrl: 'https://logistics.ecpay.com.tw', isProduction: true });
    expect(parseConfig({ ...base, ...LOGISTICS, ECPAY_LOGISTICS_SUB_TYPES: 'fami, unimart' }).ecpayLogistics!.subTypes).toEqual(['FAMI', 'UNIMART']);
  });

  test.each([
    [{ ECPAY_LOGISTICS_SENDER_NAME: '陳大明1' }, /^ECPAY_LOGISTICS_SENDER_NAME is invalid/],
    [{ ECPAY_LOGISTICS_SENDER_NAME: '陳' }, /^ECPAY_LOGISTICS_SENDER_NAME is invalid/],
    [{ ECPAY_LOGISTICS_SENDER_CELLPHONE: '0227001234' }, /^ECPAY_LOGISTICS_SENDER_CELLPHONE is invalid/],
    [{ ECPAY_LOGISTICS_SUB_TYPES: 'FAMIC2C,FAMI' }, /^ECPAY_LOGISTICS_SUB_TYPES is invalid \(C2C and B2C/],
    [{ ECPAY_LOGISTICS_SUB_TYPES: 'TCAT' }, /^ECPAY_LOGISTICS_SUB_TYPES is invalid \(unknown sub-type TCAT\)/],
    [{ ECPAY_LOGISTICS_API_BASE_URL: 'logistics' }, /^ECPAY_LOGISTICS_API_BASE_URL is invalid/],
  ])('a bad logistics setting is named without echoing its value (%#)', (bad, re) => {
    let message = '';
    try {
      parseConfig({ ...base, ...LOGISTICS, ...bad });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toMatch(re);
    expect(message).not.toContain('陳大明');
  });

  test('shipping fees are whole TWD amounts', () => {
    expect(parseConfig({ ...base, SHIPPING_HOME_FEE: '120', SHIPPING_CVS_FEE: '0', FREE_SHIPPING_OVER: '1500' }).shipping).toEqual({
      homeFee: 120,
      cvsFee: 0,
      freeOver: 1500,
    });
    expect(() => parseConfig({ ...base, SHIPPING_CVS_FEE: '60.5' })).toThrow(/^SHIPPING_CVS_FEE is invalid/);
    expect(() => parseConfig({ ...base, SHIPPING_HOME_FEE: '-1' })).toThrow(/^SHIPPING_HOME_FEE is invalid/);
    expect(() => parseConfig({ ...base, FREE_SHIPPING_OVER: 'lots' })).toThrow(/^FREE_SHIPPING_OVER is invalid/);
  });

  test('owners are a comma-separated list', () => {
    expect(parseConfig({ ...base, SHOP_OWNER_LINE_USER_IDS: ' Uaaa , Ubbb,,' }).ownerLineUserIds).toEqual(['Uaaa', 'Ubbb']);
  });

  test('the description used for startup logs carries no secret', () => {
    const c = parseConfig({
      ...base,
      ECPAY_MERCHANT_ID: '3002607', ECPAY_HASH_KEY: 'hashkeyvalue', ECPAY_HASH_IV: 'hashivvalue', ECPAY_CREDIT_CHECK_CODE: 'checkcodevalue',
      ECPAY_LOGISTICS_MERCHANT_ID: '2000933', ECPAY_LOGISTICS_HASH_KEY: 'logkeyvalue', ECPAY_LOGISTICS_HASH_IV: 'logivvalue',
      ECPAY_LOGISTICS_SENDER_NAME: '陳大明', ECPAY_LOGISTICS_SENDER_CELLPHONE: '0911222333',
      SINOPAC_SHOP_NO: 'NA0249_001', SINOPAC_HASH_A1: 'A1A1A1A1A1A1A1A1', SINOPAC_HASH_A2: 'A2A2A2A2A2A2A2A2', SINOPAC_HASH_B1: 'B1B1B1B1B1B1B1B1', SINOPAC_HASH_B2: 'B2B2B2B2B2B2B2B2', SINOPAC_KEY_ID: 'key-id-value',
    });
    const text = JSON.stringify(describeConfig(c));
    for (const secret of ['s3cret', 'tok3n', 'hashkeyvalue', 'hashivvalue', 'checkcodevalue', 'A1A1A1A1', 'B2B2B2B2', 'key-id-value', 'logkeyvalue', 'logivvalue', '陳大明', '0911222333']) expect(text).not.toContain(secret);
  });
});
