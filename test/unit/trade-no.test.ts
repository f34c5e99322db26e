import { newTradeNo } from '../../src/domain/payments';

describe('bank trade numbers', () => {
  test('SinoPac trade numbers never end in 9 (the real sandbox never auto-pays those ATM orders) and fit the bank OrderNo rules', () => {
    const seen = new Set<string>();
    const lastChars = new Set<string>();
    // With a uniformly random last hex digit, 4000 numbers without a final 9 would happen with
    // probability (15/16)^4000, i.e. never.
    for (let i = 0; i < 4000; i++) {
      const no = newTradeNo('sinopac');
      expect(no).toMatch(/^S[0-9A-Z]{1,19}$/);
      expect(no.endsWith('9')).toBe(false);
      seen.add(no);
      lastChars.add(no.at(-1)!);
    }
    expect(seen.size).toBe(4000);
    // Every other hex digit still occurs at the end.
    expect([...lastChars].sort().join('')).toBe('012345678ABCDEF');
  });

  test('ECPay trade numbers keep the same shape (any last digit; MerchantTradeNo is at most 20 characters)', () => {
    const lastChars = new Set<string>();
    for (let i = 0; i < 4000; i++) {
      const no = newTradeNo('ecpay');
      expect(no).toMatch(/^E[0-9A-Z]{1,19}$/);
      lastChars.add(no.at(-1)!);
    }
    expect(lastChars.has('9')).toBe(true);
  });
});
