import type { Db, Trx } from '../data/db';

export interface Product {
  id: number;
  sku: string;
  category_id: number;
  name: string;
  description: string;
  price: number;
  image_url: string;
  active: boolean;
  stock_on_hand: number;
  stock_reserved: number;
}

export const available = (p: Pick<Product, 'stock_on_hand' | 'stock_reserved'>): number => p.stock_on_hand - p.stock_reserved;

export const CATALOG_PAGE_SIZE = 11; // 11 products + one "more" bubble fits LINE's 12-bubble carousel

export async function listCatalogPage(db: Db | Trx, page: number): Promise<{ products: Product[]; total: number; pages: number }> {
  const [{ count }] = await db('products').where({ active: true }).count<{ count: number }[]>({ count: '*' });
  const total = Number(count);
  const pages = Math.max(1, Math.ceil(total / CATALOG_PAGE_SIZE));
  const p = Math.min(Math.max(1, page), pages);
  const products = await db('products')
    .where({ active: true })
    .orderBy([{ column: 'sort_order' }, { column: 'id' }])
    .offset((p - 1) * CATALOG_PAGE_SIZE)
    .limit(CATALOG_PAGE_SIZE)
    .select<Product[]>('*');
  return { products, total, pages };
}

/** A product by numeric id or SKU (case-insensitive). */
export async function findProduct(db: Db | Trx, ref: string): Promise<Product | undefined> {
  const q = db('products');
  if (/^\d{1,9}$/.test(ref)) q.where({ id: Number(ref) });
  else q.whereRaw('upper(sku) = ?', [ref.toUpperCase()]);
  return q.first<Product>();
}
