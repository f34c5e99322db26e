import { reminderAt, reminderLeadMs } from '../../src/domain/reminders';

const leads = { card: 10, code: 30 };
const MIN = 60_000;
const t0 = new Date('2026-12-04T02:00:00Z');
const at = (minutes: number) => new Date(t0.getTime() + minutes * MIN);
const order = (o: { method?: string | null; holdMinutes: number; setAfterMinutes?: number }) => ({
  id: 1,
  payment_method: o.method ?? null,
  created_at: t0,
  hold_set_at: o.setAfterMinutes === undefined ? null : at(o.setAfterMinutes),
  hold_expires_at: at((o.setAfterMinutes ?? 0) + o.holdMinutes),
});

describe('when an unpaid order reminds its shopper', () => {
  test('ATM and convenience-store codes get the code lead; cards, and orders with no method yet, the card lead', () => {
    expect(reminderLeadMs('sinopac-atm', leads)).toBe(30 * MIN);
    expect(reminderLeadMs('ecpay-atm', leads)).toBe(30 * MIN);
    expect(reminderLeadMs('ecpay-cvs', leads)).toBe(30 * MIN);
    expect(reminderLeadMs('sinopac-card', leads)).toBe(10 * MIN);
    expect(reminderLeadMs('ecpay-credit', leads)).toBe(10 * MIN);
    expect(reminderLeadMs(null, leads)).toBe(10 * MIN);
  });

  test('the lead before the hold ends: 30 minutes before a 3-day ATM hold, 10 before a 60-minute card hold', () => {
    expect(reminderAt(order({ method: 'sinopac-atm', holdMinutes: 4320, setAfterMinutes: 5 }), leads)).toEqual(at(5 + 4320 - 30));
    expect(reminderAt(order({ method: 'ecpay-credit', holdMinutes: 60, setAfterMinutes: 2 }), leads)).toEqual(at(2 + 60 - 10));
    expect(reminderAt(order({ holdMinutes: 30 }), leads)).toEqual(at(20));
  });

  test('no reminder for a hold shorter than twice the lead, measured from when the hold was set', () => {
    expect(reminderAt(order({ holdMinutes: 19 }), leads)).toBeNull();
    expect(reminderAt(order({ holdMinutes: 20 }), leads)).toEqual(at(10));
    // A card hold of 15 minutes set late in the order's life is still 15 minutes long.
    expect(reminderAt(order({ method: 'sinopac-card', holdMinutes: 15, setAfterMinutes: 100 }), leads)).toBeNull();
    expect(reminderAt(order({ method: 'sinopac-atm', holdMinutes: 59, setAfterMinutes: 1 }), leads)).toBeNull();
  });

  test('a lead of 0 turns that reminder off', () => {
    expect(reminderAt(order({ holdMinutes: 30 }), { card: 0, code: 30 })).toBeNull();
    expect(reminderAt(order({ method: 'ecpay-cvs', holdMinutes: 10080 }), { card: 10, code: 0 })).toBeNull();
  });
});
