import type { Trx } from '../data/db';
import { available, findProduct, Product } from './catalog';

export const MAX_CART_LINES = 20;

/** Most units of one product in a cart (and in one order line). */
export const MAX_LINE_QTY = 99;

/** A change of one cart line's quantity: set it, or add (a negative delta removes). */
export type QtyOp = { op: 'set'; qty: number } | { op: 'add'; delta: number };

export interface CartLine {
  product_id: number;
  qty: number;
  sku: string;
  name: string;
  price: number;
  active: boolean;
  available: number;
}

export interface CartView {
  cartId: number | null;
  version: number;
  lines: CartLine[];
  subtotal: number;
  count: number;
}

export type CartChangeResult =
  | { kind: 'updated'; product: Product; qty: number }
  | { kind: 'unknown-product'; ref: string }
  | { kind: 'inactive'; product: Product }
  | { kind: 'not-enough'; product: Product; available: number }
  | { kind: 'qty-invalid' }
  | { kind: 'too-many-lines' };

/**
 * Locks (creating if needed) the shopper's cart row: every cart change and checkout is serialised per shopper.
 * One round trip: the no-op ON CONFLICT update takes the row lock (waiting for a concurrent holder) and
 * returns the row as last committed. Read the cart's lines in a later statement, never in this one.
 */
export async function lockCart(trx: Trx, userId: string): Promise<{ id: number; version: number }> {
  const { rows } = await trx.raw<{ rows: Array<{ id: number; version: number }> }>(
    'INSERT INTO carts (line_user_id) VALUES (?) ON CONFLICT (line_user_id) DO UPDATE SET version = carts.version RETURNING id, version',
    [userId],
  );
  return rows[0]!;
}

export async function getCart(trx: Trx, userId: string): Promise<CartView> {
  const cart = await trx('carts').where({ line_user_id: userId }).first('id', 'version');
  if (!cart) return { cartId: null, version: 0, lines: [], subtotal: 0, count: 0 };
  const rows = await trx('cart_lines as cl')
    .join('products as p', 'p.id', 'cl.product_id')
    .join('product_stock as s', 's.product_id', 'cl.product_id')
    .where('cl.cart_id', cart.id)
    .orderBy('cl.added_at')
    .orderBy('cl.product_id')
    .select('cl.product_id', 'cl.qty', 'p.sku', 'p.name', 'p.price', 'p.active', 's.stock_on_hand', 's.stock_reserved');
  const lines: CartLine[] = rows.map((r) => ({
    product_id: r.product_id,
    qty: r.qty,
    sku: r.sku,
    name: r.name,
    price: r.price,
    active: r.active,
    available: available(r),
  }));
  return {
    cartId: cart.id,
    version: cart.version,
    lines,
    subtotal: lines.reduce((s, l) => s + l.price * l.qty, 0),
    count: lines.reduce((s, l) => s + l.qty, 0),
  };
}

/**
 * Sets or adjusts one cart line. Refuses more than is available right now (the checkout
 * re-checks under lock: the cart never reserves stock by itself).
 */
export async function changeCart(trx: Trx, userId: string, ref: string | number, change: QtyOp): Promise<CartChangeResult> {
  const product = await findProduct(trx, typeof ref === 'number' ? String(ref) : ref);
  if (!product) return { kind: 'unknown-product', ref: String(ref) };
  // A quantity or step beyond the per-line limit is bad input: refuse it before touching anything.
  if ((change.op === 'set' ? change.qty : Math.abs(change.delta)) > MAX_LINE_QTY) return { kind: 'qty-invalid' };
  const cart = await lockCart(trx, userId);
  const line = await trx('cart_lines').where({ cart_id: cart.id, product_id: product.id }).first('qty');
  const current = line?.qty ?? 0;
  // A decrement past zero removes the line (what the − button does on the last unit).
  const next = change.op === 'set' ? change.qty : Math.max(0, current + change.delta);
  if (next > MAX_LINE_QTY) return { kind: 'qty-invalid' };
  // Nothing to change (e.g. a stale − tap on a line already gone): no write, no version bump,
  // so the shopper's checkout button stays valid.
  if (next === current) return { kind: 'updated', product, qty: current };
  if (next > 0 && !product.active) return { kind: 'inactive', product };
  if (next > current && next > available(product)) return { kind: 'not-enough', product, available: Math.max(0, available(product)) };
  if (next > 0 && !line) {
    const [{ count }] = await trx('cart_lines').where({ cart_id: cart.id }).count<{ count: number }[]>({ count: '*' });
    if (Number(count) >= MAX_CART_LINES) return { kind: 'too-many-lines' };
  }
  return removeOrSet(trx, cart.id, product, next);
}

async function removeOrSet(trx: Trx, cartId: number, product: Product, qty: number): Promise<CartChangeResult> {
  if (qty === 0) await trx('cart_lines').where({ cart_id: cartId, product_id: product.id }).delete();
  else {
    await trx('cart_lines')
      .insert({ cart_id: cartId, product_id: product.id, qty })
      .onConflict(['cart_id', 'product_id'])
      .merge({ qty });
  }
  await trx('carts').where({ id: cartId }).update({ version: trx.raw('version + 1'), updated_at: trx.fn.now() });
  return { kind: 'updated', product, qty };
}
