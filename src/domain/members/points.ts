import type { MembersConfig } from '../../config';
import type { Db, Trx } from '../../data/db';
import type { AfterCommit } from '../../data/unit-of-work';
import { ADJUSTMENT_LABEL } from '../../texts';
import type { Notifier } from '../notices';
import { setAdjustment } from '../order-adjustments';
import type { OrderListener } from '../order-events';
import { lockOrder, Order, OrderItems, orderItems } from '../orders';
import { balanceOf, entriesWithPrefix, LedgerEntry, post, recentEntries, takeUpTo } from './ledger';
import { pointsFor, proportion, redeemOffer, tierDiscount, tierFor, TierStanding } from './rules';

export type RedeemResult =
  | { kind: 'redeemed'; order: Order; items: OrderItems; points: number; amount: number; balance: number }
  /** This order already took points (a second tap). */
  | { kind: 'already'; order: Order; items: OrderItems }
  | { kind: 'not-found'; orderNo: string }
  | { kind: 'not-pending'; order: Order }
  /** A payment method was chosen: the bank holds a trade for the total, which may not change now. */
  | { kind: 'payment-started'; order: Order; items: OrderItems }
  | { kind: 'no-points'; order: Order; items: OrderItems; balance: number };

export interface PointsSummary {
  balance: number;
  /** Points earned in the last 12 months (less those clawed back): what the tier is based on. */
  earned: number;
  standing: TierStanding;
  entries: LedgerEntry[];
}

/** Points earned by order payments: how they are granted, taken back, redeemed and returned. */
const src = {
  earn: (orderId: number) => `order:${orderId}:earn`,
  redeem: (orderId: number) => `order:${orderId}:redeem`,
  redeemReturn: (orderId: number) => `order:${orderId}:redeem-return`,
  redeemLate: (orderId: number) => `order:${orderId}:redeem-late`,
  clawback: (orderId: number, refundId: number) => `order:${orderId}:clawback:${refundId}`,
  redeemRefund: (orderId: number, refundId: number) => `order:${orderId}:redeem-refund:${refundId}`,
};

/**
 * Points and tiers. Tiers follow the points earned in the last 12 months; the tier discount is an
 * adjustment of the order made at checkout; points are earned when an order is paid and taken back
 * in proportion to refunds (never below 0: a shortfall is recorded and the owner told); points
 * redeemed at checkout are held by the order (an entry of their own) and returned once if it
 * expires or is cancelled. Every write is a ledger entry in the transaction of the order change.
 */
export class Points {
  constructor(
    private readonly cfg: MembersConfig,
    private readonly notifier: Notifier,
  ) {}

  /** Points earned in the 12 months up to now, net of what refunds took back (spent or not). */
  async earnedLastYear(db: Db | Trx, userId: string): Promise<number> {
    const { rows } = await db.raw<{ rows: Array<{ earned: number }> }>(
      `SELECT coalesce(sum(CASE WHEN e.kind = 'earn' THEN e.amount ELSE e.amount - e.shortfall END), 0)::int AS earned
         FROM member_ledger e JOIN member_accounts a ON a.id = e.account_id
        WHERE a.line_user_id = ? AND a.kind = 'points' AND e.kind IN ('earn', 'clawback')
          AND e.created_at > now() - interval '12 months'`,
      [userId],
    );
    return Math.max(0, rows[0]!.earned);
  }

  async standing(db: Db | Trx, userId: string): Promise<TierStanding & { earned: number }> {
    const earned = await this.earnedLastYear(db, userId);
    return { ...tierFor(earned, this.cfg.tiers), earned };
  }

  async summary(db: Db | Trx, userId: string, entries = 5): Promise<PointsSummary> {
    const [balance, standing, recent] = [await balanceOf(db, userId, 'points'), await this.standing(db, userId), await recentEntries(db, userId, 'points', entries)];
    return { balance, earned: standing.earned, standing, entries: recent };
  }

  /** What points could take off this unpaid order now (for the 「用 N 點折抵」 button), or null. */
  async offer(db: Db | Trx, order: Order): Promise<{ points: number; amount: number } | null> {
    if (order.status !== 'pending_payment') return null;
    const taken = await db('order_adjustments').where({ order_id: order.id, kind: 'points' }).first('id');
    if (taken) return null;
    const started = await db('payment_attempts').where({ order_id: order.id }).whereIn('status', ['creating', 'pending', 'paid']).first('id');
    if (started) return null;
    const balance = await balanceOf(db, order.line_user_id, 'points');
    return balance > 0 ? redeemOffer(order.total, balance, this.cfg) : null;
  }

  /**
   * Redeems points on the shopper's unpaid order: the points leave the account (held by the order,
   * `order:<id>:redeem`) and the order gets a points discount line, in one savepoint. A second tap
   * finds the order's points line and changes nothing. Once a payment method was chosen the total
   * is frozen (setAdjustment refuses), and so is this.
   */
  async redeem(trx: Trx, args: { userId: string; orderNo: string }): Promise<RedeemResult> {
    const order = await lockOrder(trx, { order_no: args.orderNo });
    if (!order || order.line_user_id !== args.userId) return { kind: 'not-found', orderNo: args.orderNo };
    if (order.status !== 'pending_payment') return { kind: 'not-pending', order };
    if (await trx('order_adjustments').where({ order_id: order.id, kind: 'points' }).first('id')) {
      return { kind: 'already', order, items: await orderItems(trx, order.id) };
    }
    if (await trx('payment_attempts').where({ order_id: order.id }).whereIn('status', ['creating', 'pending', 'paid']).first('id')) {
      return { kind: 'payment-started', order, items: await orderItems(trx, order.id) };
    }
    const balance = await balanceOf(trx, args.userId, 'points');
    const offer = balance > 0 ? redeemOffer(order.total, balance, this.cfg) : null;
    if (!offer) return { kind: 'no-points', order, items: await orderItems(trx, order.id), balance };
    const done = await trx.transaction(async (sp) => {
      const taken = await post(sp, {
        userId: args.userId, account: 'points', kind: 'redeem', amount: -offer.points, source: src.redeem(order.id),
        details: { orderNo: order.order_no, twd: offer.amount },
      });
      if (taken.outcome !== 'posted') return null;
      const adj = await setAdjustment(sp, order.id, { kind: 'points', label: ADJUSTMENT_LABEL.points(offer.points), amount: -offer.amount, details: { points: offer.points } });
      if (adj.kind !== 'ok') throw new RedeemRefused(adj.kind);
      return { order: adj.order, balance: taken.balance };
    }).catch((err: unknown) => {
      if (err instanceof RedeemRefused) return null;
      throw err;
    });
    const items = await orderItems(trx, order.id);
    if (!done) return { kind: 'already', order, items };
    return { kind: 'redeemed', order: done.order, items, points: offer.points, amount: offer.amount, balance: done.balance };
  }

  /** The order listener: tier discount at checkout, earn on payment, return on close, take back on refund. */
  listener(): OrderListener {
    return {
      created: async (trx, _after, { order, items }) => {
        const { tier } = await this.standing(trx, order.line_user_id);
        const goods = items.lines.reduce((s, l) => s + l.line_total, 0);
        const discount = tierDiscount(goods, tier);
        if (discount < 1) return;
        await setAdjustment(trx, order.id, {
          kind: 'tier-discount',
          label: ADJUSTMENT_LABEL.tier(tier.name, tier.discountPercent),
          amount: -discount,
          details: { tier: tier.name, percent: tier.discountPercent },
        });
      },

      paid: async (trx, after, { order, late, noStock }) => {
        // Money for an order whose stock is gone is refunded: nothing to earn, and points it had
        // held were returned when it closed.
        if (noStock) return;
        if (late) await this.retakeAfterLatePayment(trx, after, order);
        const earned = pointsFor(order.paid_amount, this.cfg);
        if (earned < 1) return;
        await post(trx, { userId: order.line_user_id, account: 'points', kind: 'earn', amount: earned, source: src.earn(order.id), details: { orderNo: order.order_no, paid: order.paid_amount } });
      },

      closed: async (trx, _after, { order }) => {
        const redeemed = (await entriesWithPrefix(trx, order.line_user_id, 'points', src.redeem(order.id))).find((e) => e.source === src.redeem(order.id));
        if (!redeemed) return;
        await post(trx, {
          userId: order.line_user_id, account: 'points', kind: 'redeem-return', amount: -redeemed.amount, source: src.redeemReturn(order.id),
          details: { orderNo: order.order_no },
        });
      },

      refunded: async (trx, after, { order, refundId, refundedTotal }) => {
        const entries = await entriesWithPrefix(trx, order.line_user_id, 'points', `order:${order.id}:`);
        const sum = (kind: string, f: (e: LedgerEntry) => number) => entries.filter((e) => e.kind === kind).reduce((s, e) => s + f(e), 0);
        // What the order's points held back from its price (redeemed, less returned, plus taken again).
        const held = -(sum('redeem', (e) => e.amount) + sum('redeem-return', (e) => e.amount) + sum('redeem-late', (e) => e.amount));
        const giveBack = proportion(held, refundedTotal, order.paid_amount) - sum('redeem-refund', (e) => e.amount);
        if (giveBack > 0) {
          await post(trx, {
            userId: order.line_user_id, account: 'points', kind: 'redeem-refund', amount: giveBack, source: src.redeemRefund(order.id, refundId),
            details: { orderNo: order.order_no, refundId },
          });
        }
        const earned = sum('earn', (e) => e.amount);
        const due = proportion(earned, refundedTotal, order.paid_amount) - sum('clawback', (e) => -e.amount + e.shortfall);
        if (due <= 0) return;
        const r = await takeUpTo(trx, {
          userId: order.line_user_id, account: 'points', kind: 'clawback', due, source: src.clawback(order.id, refundId),
          details: { orderNo: order.order_no, refundId, due },
        });
        if (r.outcome === 'posted' && r.shortfall > 0) {
          await this.notifier.owners(trx, after, `points:${order.id}:shortfall:${refundId}`, {
            type: 'points-shortfall', orderNo: order.order_no, userId: order.line_user_id, due, taken: r.taken,
          });
        }
      },
    };
  }

  /**
   * A late payment (the order had expired or been cancelled, so its redeemed points went back)
   * gets the points discount it was priced with: the points are taken again, as far as they are
   * still there; a shortfall is recorded and the owner told.
   */
  private async retakeAfterLatePayment(trx: Trx, after: AfterCommit, order: Order): Promise<void> {
    const entries = await entriesWithPrefix(trx, order.line_user_id, 'points', `order:${order.id}:redeem`);
    const returned = entries.find((e) => e.source === src.redeemReturn(order.id));
    if (!returned) return;
    const r = await takeUpTo(trx, {
      userId: order.line_user_id, account: 'points', kind: 'redeem-late', due: returned.amount, source: src.redeemLate(order.id),
      details: { orderNo: order.order_no, due: returned.amount },
    });
    if (r.outcome === 'posted' && r.shortfall > 0) {
      await this.notifier.owners(trx, after, `points:${order.id}:shortfall:late`, {
        type: 'points-shortfall', orderNo: order.order_no, userId: order.line_user_id, due: returned.amount, taken: r.taken,
      });
    }
  }
}

class RedeemRefused extends Error {
  constructor(readonly reason: string) {
    super(`points redemption refused: ${reason}`);
  }
}
