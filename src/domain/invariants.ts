import type { Db } from '../data/db';
import { ledgerViolations } from './members/ledger';

/**
 * Stock, payment and member ledger invariants. Tests run this after every file that touches orders;
 * `npm run check:invariants` runs it against any database. Each violation is one line.
 */
export async function checkInvariants(db: Db): Promise<string[]> {
  const out: string[] = [];
  const q = async (sql: string) => (await db.raw(sql)).rows as Array<Record<string, unknown>>;

  for (const r of await q(`SELECT p.sku, s.slot, s.on_hand, s.reserved FROM stock_slots s JOIN products p ON p.id = s.product_id
      WHERE s.on_hand < 0 OR s.reserved < 0 OR s.on_hand - s.reserved < 0 ORDER BY p.id, s.slot`)) {
    out.push(`product ${r.sku} slot ${r.slot}: on hand ${r.on_hand}, reserved ${r.reserved} (negative stock or availability)`);
  }
  for (const r of await q(`SELECT p.sku, s.slot, s.reserved, coalesce(h.held, 0) AS held FROM stock_slots s JOIN products p ON p.id = s.product_id
      LEFT JOIN (SELECT product_id, slot, sum(qty)::int AS held FROM reservations WHERE status = 'held' GROUP BY product_id, slot) h
        ON h.product_id = s.product_id AND h.slot = s.slot
      WHERE s.reserved <> coalesce(h.held, 0) ORDER BY p.id, s.slot`)) {
    out.push(`product ${r.sku} slot ${r.slot}: reserved ${r.reserved} but held reservations sum to ${r.held}`);
  }
  for (const r of await q(`SELECT r.id, r.product_id, r.slot FROM reservations r
      WHERE NOT EXISTS (SELECT 1 FROM stock_slots s WHERE s.product_id = r.product_id AND s.slot = r.slot)
        AND EXISTS (SELECT 1 FROM products p WHERE p.id = r.product_id)`)) {
    out.push(`reservation ${r.id}: names slot ${r.slot} of product ${r.product_id}, which does not exist`);
  }
  // order_lines and reservations name products without a foreign key (see migration 20261201000200).
  for (const r of await q(`SELECT 'order line' AS what, l.id, l.product_id FROM order_lines l WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = l.product_id)
      UNION ALL SELECT 'reservation', r.id, r.product_id FROM reservations r WHERE NOT EXISTS (SELECT 1 FROM products p WHERE p.id = r.product_id)`)) {
    out.push(`${r.what} ${r.id}: names product ${r.product_id}, which does not exist`);
  }
  for (const r of await q(`SELECT o.order_no, count(*)::int AS n FROM order_events e JOIN orders o ON o.id = e.order_id
      WHERE e.to_status IN ('paid', 'paid_no_stock') AND e.from_status IS DISTINCT FROM e.to_status GROUP BY o.order_no HAVING count(*) > 1`)) {
    out.push(`order ${r.order_no}: marked paid ${r.n} times`);
  }
  for (const r of await q(`SELECT order_id, count(*)::int AS n FROM payment_attempts WHERE status = 'paid' AND order_id IS NOT NULL GROUP BY order_id HAVING count(*) > 1`)) {
    out.push(`order id ${r.order_id}: ${r.n} paid attempts`);
  }
  for (const r of await q(`SELECT id FROM reservations WHERE (committed_at IS NOT NULL AND released_at IS NOT NULL)
      OR (status = 'held' AND (committed_at IS NOT NULL OR released_at IS NOT NULL))
      OR (status = 'committed' AND committed_at IS NULL) OR (status = 'released' AND released_at IS NULL)`)) {
    out.push(`reservation ${r.id}: status and timestamps disagree (committed and released?)`);
  }
  for (const r of await q(`SELECT o.order_no, o.status, r.status AS rstatus, count(*)::int AS n FROM orders o JOIN reservations r ON r.order_id = o.id
      WHERE (o.status = 'pending_payment' AND r.status <> 'held')
         OR (o.status IN ('expired', 'cancelled') AND r.status = 'held')
         OR (o.status IN ('paid', 'shipped', 'at_store', 'returned', 'completed') AND r.status = 'held')
      GROUP BY o.order_no, o.status, r.status`)) {
    out.push(`order ${r.order_no} (${r.status}) has ${r.n} ${r.rstatus} reservation(s)`);
  }
  for (const r of await q(`SELECT o.order_no FROM orders o WHERE o.status IN ('paid', 'shipped', 'at_store', 'returned', 'completed')
      AND (SELECT coalesce(sum(qty), 0) FROM reservations r WHERE r.order_id = o.id AND r.status = 'committed')
        <> (SELECT sum(qty) FROM order_lines l WHERE l.order_id = o.id)`)) {
    out.push(`order ${r.order_no}: paid but its committed stock does not match its lines`);
  }
  for (const r of await q(`SELECT o.order_no, o.total, l.goods, coalesce(a.adj, 0) AS adj FROM orders o
      JOIN (SELECT order_id, sum(line_total)::int AS goods FROM order_lines GROUP BY order_id) l ON l.order_id = o.id
      LEFT JOIN (SELECT order_id, sum(amount)::int AS adj FROM order_adjustments GROUP BY order_id) a ON a.order_id = o.id
      WHERE o.total <> l.goods + coalesce(a.adj, 0)`)) {
    out.push(`order ${r.order_no}: total ${r.total} but its lines come to ${r.goods} and its fees and discounts to ${r.adj}`);
  }
  // A store-change link (a closed pickup store) belongs to its parcel's order; a used one's closure was fixed.
  for (const r of await q(`SELECT l.id, l.order_id, s.order_id AS shipment_order, s.store_fixed_at FROM delivery_links l JOIN shipments s ON s.id = l.shipment_id
      WHERE l.purpose = 'store-change' AND (s.order_id <> l.order_id OR (l.used_at IS NOT NULL AND s.store_fixed_at IS NULL))`)) {
    out.push(`store-change link ${r.id}: order ${r.order_id}, parcel of order ${r.shipment_order}, fixed at ${r.store_fixed_at ?? 'never'}`);
  }
  out.push(...(await ledgerViolations(db)), ...(await memberMoneyViolations(q)));
  return out;
}

/** The ledger against the business records that caused its entries. */
async function memberMoneyViolations(q: (sql: string) => Promise<Array<Record<string, unknown>>>): Promise<string[]> {
  const out: string[] = [];
  // Every paid top-up attempt credited once, with its amount; no credit without a paid attempt.
  for (const r of await q(`SELECT p.id, p.amount, e.amount AS credited FROM payment_attempts p
      LEFT JOIN member_accounts a ON a.kind = 'wallet' AND a.line_user_id = (SELECT line_user_id FROM wallet_topups t WHERE t.id = p.topup_id)
      LEFT JOIN member_ledger e ON e.account_id = a.id AND e.source = 'topup:' || p.id
      WHERE p.topup_id IS NOT NULL AND p.status = 'paid' AND e.amount IS DISTINCT FROM p.amount`)) {
    out.push(`top-up attempt ${r.id}: paid ${r.amount} but credited ${r.credited ?? 'nothing'}`);
  }
  for (const r of await q(`SELECT e.id, e.source FROM member_ledger e WHERE e.kind = 'topup'
      AND NOT EXISTS (SELECT 1 FROM payment_attempts p WHERE 'topup:' || p.id = e.source AND p.status = 'paid')`)) {
    out.push(`ledger entry ${r.id}: top-up credit ${r.source} without a paid attempt`);
  }
  // Every order paid from the wallet was debited its total, once.
  for (const r of await q(`SELECT o.order_no, o.paid_amount, e.amount FROM payment_attempts p JOIN orders o ON o.id = p.order_id
      LEFT JOIN member_accounts a ON a.kind = 'wallet' AND a.line_user_id = o.line_user_id
      LEFT JOIN member_ledger e ON e.account_id = a.id AND e.source = 'order:' || o.id || ':pay'
      WHERE p.method = 'wallet' AND p.status = 'paid' AND e.amount IS DISTINCT FROM -o.paid_amount`)) {
    out.push(`order ${r.order_no}: paid ${r.paid_amount} from the wallet but debited ${r.amount ?? 'nothing'}`);
  }
  // Points an unpaid order held are back once it closed (unless a late payment took them again).
  for (const r of await q(`SELECT o.order_no FROM orders o JOIN member_accounts a ON a.kind = 'points' AND a.line_user_id = o.line_user_id
      JOIN member_ledger e ON e.account_id = a.id AND e.source = 'order:' || o.id || ':redeem'
      WHERE o.status IN ('expired', 'cancelled')
        AND NOT EXISTS (SELECT 1 FROM member_ledger r WHERE r.account_id = a.id AND r.source = 'order:' || o.id || ':redeem-return')`)) {
    out.push(`order ${r.order_no}: closed but the points it held were not returned`);
  }
  return out;
}
