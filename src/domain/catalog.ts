import type { Db, Trx } from '../data/db';

/** A product with its stock totals (the sum of its stock slots, see migration 20261201000100). */
export interface Product {
  id: number;
  sku: string;
  category_id: number;
  name: string;
  description: string;
  price: number;
  /** A photo hosted elsewhere (the demo catalog); null for products with an uploaded photo or none. */
  image_url: string | null;
  /** SHA-256 of the uploaded photo (product_images), if any: see photos.ts productImageUrl. */
  image_hash?: string | null;
  active: boolean;
  stock_on_hand: number;
  stock_reserved: number;
}

export const available = (p: Pick<Product, 'stock_on_hand' | 'stock_reserved'>): number => p.stock_on_hand - p.stock_reserved;

/** `products` with their stock totals and photo hash; the columns are the Product interface's. */
export function productsWithStock(db: Db | Trx) {
  return db('products as p')
    .join('product_stock as s', 's.product_id', 'p.id')
    .leftJoin('product_images as pi', 'pi.id', 'p.image_id')
    .select('p.*', 's.stock_on_hand', 's.stock_reserved', 'pi.sha256 as image_hash');
}

/**
 * Sets a product's stock on hand, spread over its slots. Refused when below what unpaid orders
 * hold: returns the units reserved either way.
 */
export async function setStockOnHand(db: Db | Trx, productId: number, onHand: number): Promise<{ ok: boolean; reserved: number }> {
  const { rows } = await db.raw<{ rows: Array<{ reserved: number }> }>('SELECT stock_set(?, ?) AS reserved', [productId, onHand]);
  const reserved = rows[0]!.reserved;
  return { ok: onHand >= reserved, reserved };
}

export const CATALOG_PAGE_SIZE = 11; // 11 products + one "more" bubble fits LINE's 12-bubble carousel

export async function listCatalogPage(db: Db | Trx, page: number): Promise<{ products: Product[]; total: number; pages: number }> {
  const [{ count }] = await db('products').where({ active: true }).count<{ count: number }[]>({ count: '*' });
  const total = Number(count);
  const pages = Math.max(1, Math.ceil(total / CATALOG_PAGE_SIZE));
  const p = Math.min(Math.max(1, page), pages);
  const products = await productsWithStock(db)
    .where('p.active', true)
    .orderBy([{ column: 'p.sort_order' }, { column: 'p.id' }])
    .offset((p - 1) * CATALOG_PAGE_SIZE)
    .limit(CATALOG_PAGE_SIZE)
    .then((rows) => rows as Product[]);
  return { products, total, pages };
}

/** A product by numeric id or SKU (case-insensitive). */
export async function findProduct(db: Db | Trx, ref: string): Promise<Product | undefined> {
  const q = productsWithStock(db);
  if (/^\d{1,9}$/.test(ref)) q.where('p.id', Number(ref));
  else q.whereRaw('upper(p.sku) = ?', [ref.toUpperCase()]);
  return q.first<Product>();
}
