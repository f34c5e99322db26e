import type { Trx } from '../data/db';
import type { AfterCommit, UnitOfWork } from '../data/unit-of-work';
import { isPaymentMethod, METHOD_INFO } from '../gateways/payment-gateway';
import type { Queues } from '../jobs/queues';
import type { Notifier } from './notices';
import { lockOrder, Order } from './orders';
import { availableMethods } from './payments/context';
import type { Gateways, PaymentAttempt } from './payments/types';

/** REMIND_BEFORE_MINUTES_CARD / _CODE: minutes before the hold ends; 0 turns that reminder off. */
export interface ReminderLeads {
  card: number;
  code: number;
}

/** What of an order decides its reminder time. */
export type ReminderOrder = Pick<Order, 'id' | 'payment_method' | 'hold_expires_at' | 'created_at'> & { hold_set_at?: Date | null };

/** A job may run a little before the moment it was computed for (clocks of Redis, Node and PostgreSQL). */
const EARLY_TOLERANCE_MS = 1000;

/** ATM and convenience-store codes get the code lead; cards, and orders with no method chosen yet, the card lead. */
export function reminderLeadMs(method: string | null, leads: ReminderLeads): number {
  const kind = method && isPaymentMethod(method) ? METHOD_INFO[method].kind : 'card';
  return (kind === 'card' ? leads.card : leads.code) * 60_000;
}

/**
 * When the shopper of an unpaid order is reminded: the lead before its hold ends. Null when that
 * reminder is off, or the hold is shorter than twice the lead (a reminder then would come almost
 * with the order itself). The hold started with the order, or when a method was chosen (hold_set_at).
 */
export function reminderAt(o: ReminderOrder, leads: ReminderLeads): Date | null {
  const lead = reminderLeadMs(o.payment_method, leads);
  if (lead <= 0) return null;
  const start = o.hold_set_at ?? o.created_at;
  if (o.hold_expires_at.getTime() - start.getTime() < 2 * lead) return null;
  return new Date(o.hold_expires_at.getTime() - lead);
}

/**
 * One push to the shopper of an order still unpaid shortly before its hold ends: the amount, the
 * deadline and how to pay. A delayed job per hold (its id names the hold's end, so a moved hold
 * gets a job of its own), a sweeper for jobs that were lost, and the database as the guarantee:
 * `orders.reminded_at` and the outbox key `order:<id>:reminder`, both written in the transaction
 * that checks, on the locked order row, that it is still unpaid and its hold still running.
 */
export class PaymentReminders {
  constructor(
    private readonly d: { uow: UnitOfWork; notifier: Notifier; queues: Queues; gateways: Gateways; leads: ReminderLeads },
  ) {}

  /** The hold was set (checkout) or moved (a method chosen): its reminder job, after commit. */
  schedule(after: AfterCommit, order: ReminderOrder): void {
    const at = reminderAt(order, this.d.leads);
    if (at) after.tasks.push(() => this.d.queues.scheduleReminder(order.id, at));
  }

  /** Sends the order's reminder if it is due and still wanted; true if it was written. */
  async remind(orderId: number): Promise<boolean> {
    return this.d.uow.run(async (trx, after) => {
      const order = await lockOrder(trx, { id: orderId });
      if (!order || order.status !== 'pending_payment' || order.reminded_at) return false;
      const now = await dbNow(trx);
      const at = reminderAt(order, this.d.leads);
      // Not due: the hold moved later since this job was made (the new hold has a job of its own).
      if (!at || at.getTime() > now + EARLY_TOLERANCE_MS || order.hold_expires_at.getTime() <= now) return false;
      await trx('orders').where({ id: order.id }).update({ reminded_at: trx.fn.now() });
      const attempt = await trx('payment_attempts').where({ order_id: order.id, status: 'pending' }).orderBy('id', 'desc').first<PaymentAttempt>();
      const methods = availableMethods(this.d);
      await this.d.notifier.shopper(trx, after, order.line_user_id, `order:${order.id}:reminder`, {
        type: 'payment-reminder',
        order,
        instructions: attempt ? { order, attempt, otherMethods: methods.filter((m) => m !== attempt.method) } : null,
        methods,
      });
      return true;
    });
  }

  /** Reminders that are due but were not sent (their job was lost with Redis, or a worker died); returns how many were sent. */
  async sweep(limit = 200): Promise<number> {
    const maxLeadMs = Math.max(this.d.leads.card, this.d.leads.code) * 60_000;
    if (maxLeadMs <= 0) return 0;
    const db = this.d.uow.db;
    const rows: ReminderOrder[] = await db('orders')
      .where('status', 'pending_payment')
      .whereNull('reminded_at')
      .where('hold_expires_at', '>', db.fn.now())
      .whereRaw(`hold_expires_at <= now() + ? * interval '1 millisecond'`, [maxLeadMs])
      .orderBy('hold_expires_at')
      .limit(limit)
      .select('id', 'payment_method', 'hold_expires_at', 'hold_set_at', 'created_at');
    let sent = 0;
    for (const r of rows) {
      const at = reminderAt(r, this.d.leads);
      if (at && at.getTime() <= Date.now() && (await this.remind(r.id))) sent++;
    }
    return sent;
  }
}

async function dbNow(trx: Trx): Promise<number> {
  const { rows } = await trx.raw<{ rows: Array<{ now: Date }> }>('SELECT now() AS now');
  return rows[0]!.now.getTime();
}
