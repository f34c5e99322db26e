import crypto from 'node:crypto';
import type { Db, Trx } from '../data/db';
import { isUniqueViolation } from '../errors';
import { Actor, audit } from './audit';
import { Product, productsWithStock } from './catalog';
import type { OwnerService, StockSetResult } from './owner';
import { NormalizedPhoto, storePhoto } from './photos';

/**
 * The owner's catalog use cases (back office): products, categories, photos. Each runs in the
 * caller's transaction and writes an audit row with what changed. Input is what the owner typed
 * (strings, full-width digits allowed); the rules that judge it are here, not in the pages.
 */

export interface ProductDraft {
  sku: string;
  name: string;
  description: string;
  price: string;
  categoryId: string;
  active: boolean;
}

export type FieldError = 'required' | 'too-long' | 'invalid' | 'taken' | 'unknown-category' | 'out-of-range';
export type FieldErrors = Partial<Record<'sku' | 'name' | 'description' | 'price' | 'categoryId' | 'stock' | 'reason', FieldError>>;

export const PRODUCT_LIMITS = { name: 100, description: 2000, skuPattern: /^[A-Z0-9][A-Z0-9._-]{0,39}$/, maxPrice: 1_000_000, maxStock: 999_999, categoryName: 30, reason: 200 } as const;

export interface ProductValues {
  sku: string;
  name: string;
  description: string;
  price: number;
  category_id: number;
  active: boolean;
}

export type ProductSaveResult =
  | { kind: 'saved'; product: AdminProduct }
  | { kind: 'invalid'; errors: FieldErrors }
  | { kind: 'not-found' };

export type CategoryResult =
  | { kind: 'saved'; category: Category }
  | { kind: 'invalid'; errors: { name: FieldError } }
  | { kind: 'not-found' };

export interface Category {
  id: number;
  name: string;
  sort_order: number;
  product_count?: number;
}

/** A product as the back office shows it: stock totals, category name, photo hash. */
export interface AdminProduct extends Product {
  category_name: string;
  image_id: number | null;
  image_hash: string | null;
  updated_at: Date;
}

/** Folds full-width digits, letters and spaces the way the chat does (for codes and numbers). */
const fold = (s: string) => s.normalize('NFKC').trim();
/** Words are kept as typed (full-width brackets stay full-width); only spaces are tidied. */
const tidy = (s: string) => s.normalize('NFC').trim().replace(/\s+/g, ' ');

/** A whole number typed by a person ("1,200", "１２００"), or null. */
export function parseWhole(raw: string): number | null {
  const s = fold(raw).replace(/[,\s]/g, '');
  if (!/^\d{1,9}$/.test(s)) return null;
  return Number(s);
}

export function validateProduct(d: ProductDraft): { ok: true; values: ProductValues } | { ok: false; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const sku = fold(d.sku).toUpperCase();
  const name = tidy(d.name);
  const description = d.description.normalize('NFC').replace(/\r\n/g, '\n').trim();
  const price = parseWhole(d.price);
  const categoryId = parseWhole(d.categoryId);
  if (!sku) errors.sku = 'required';
  else if (!PRODUCT_LIMITS.skuPattern.test(sku)) errors.sku = 'invalid';
  if (!name) errors.name = 'required';
  else if (name.length > PRODUCT_LIMITS.name) errors.name = 'too-long';
  if (description.length > PRODUCT_LIMITS.description) errors.description = 'too-long';
  if (!fold(d.price)) errors.price = 'required';
  else if (price === null) errors.price = 'invalid';
  else if (price < 1 || price > PRODUCT_LIMITS.maxPrice) errors.price = 'out-of-range';
  if (categoryId === null) errors.categoryId = 'required';
  if (Object.keys(errors).length) return { ok: false, errors };
  return { ok: true, values: { sku, name, description, price: price!, category_id: categoryId!, active: d.active } };
}

/** A stock quantity and its reason as typed; the reason is required (it goes into the audit log). */
export function validateStock(rawQty: string, rawReason: string, reasonRequired = true): { ok: true; qty: number; reason: string } | { ok: false; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const qty = parseWhole(rawQty);
  const reason = tidy(rawReason);
  if (!fold(rawQty)) errors.stock = 'required';
  else if (qty === null) errors.stock = 'invalid';
  else if (qty > PRODUCT_LIMITS.maxStock) errors.stock = 'out-of-range';
  if (reasonRequired && !reason) errors.reason = 'required';
  else if (reason.length > PRODUCT_LIMITS.reason) errors.reason = 'too-long';
  if (Object.keys(errors).length) return { ok: false, errors };
  return { ok: true, qty: qty!, reason };
}

export type ProductSort = 'position' | 'name' | 'price' | 'price-desc' | 'available' | 'updated';
export const PRODUCT_SORTS: readonly ProductSort[] = ['position', 'name', 'price', 'price-desc', 'available', 'updated'];

export interface ProductQuery {
  q?: string;
  categoryId?: number | null;
  sort?: ProductSort;
  page?: number;
}

export const PRODUCTS_PER_PAGE = 50;

function adminProducts(db: Db | Trx) {
  return productsWithStock(db)
    .join('categories as c', 'c.id', 'p.category_id')
    .select('c.name as category_name');
}

const likeEscape = (s: string) => s.replace(/[%_\\]/g, '\\$&');

export class CatalogAdmin {
  constructor(private readonly owner: OwnerService) {}

  async listProducts(db: Db | Trx, f: ProductQuery): Promise<{ products: AdminProduct[]; total: number; page: number; pages: number }> {
    const q = adminProducts(db);
    const text = tidy(f.q ?? '');
    if (text) {
      const like = `%${likeEscape(text)}%`;
      q.where((w) => w.whereILike('p.name', like).orWhereILike('p.sku', like).orWhereILike('p.description', like));
    }
    if (f.categoryId) q.where('p.category_id', f.categoryId);
    const [{ n }] = await db.from(q.clone().as('x')).count<{ n: number }[]>({ n: '*' });
    const total = Number(n);
    const pages = Math.max(1, Math.ceil(total / PRODUCTS_PER_PAGE));
    const page = Math.min(Math.max(1, f.page ?? 1), pages);
    switch (f.sort ?? 'position') {
      case 'name':
        q.orderBy([{ column: 'p.name' }, { column: 'p.id' }]);
        break;
      case 'price':
        q.orderBy([{ column: 'p.price' }, { column: 'p.id' }]);
        break;
      case 'price-desc':
        q.orderBy([{ column: 'p.price', order: 'desc' }, { column: 'p.id' }]);
        break;
      case 'available':
        q.orderByRaw('s.stock_on_hand - s.stock_reserved, p.id');
        break;
      case 'updated':
        q.orderBy([{ column: 'p.updated_at', order: 'desc' }, { column: 'p.id', order: 'desc' }]);
        break;
      default:
        q.orderBy([{ column: 'c.sort_order' }, { column: 'p.sort_order' }, { column: 'p.id' }]);
    }
    const products = (await q.offset((page - 1) * PRODUCTS_PER_PAGE).limit(PRODUCTS_PER_PAGE)) as AdminProduct[];
    return { products, total, page, pages };
  }

  async getProduct(db: Db | Trx, id: number): Promise<AdminProduct | undefined> {
    return adminProducts(db).where('p.id', id).first<AdminProduct>();
  }

  async listCategories(db: Db | Trx): Promise<Category[]> {
    return db('categories as c')
      .leftJoin('products as p', 'p.category_id', 'c.id')
      .groupBy('c.id')
      .orderBy([{ column: 'c.sort_order' }, { column: 'c.id' }])
      .select('c.id', 'c.name', 'c.sort_order', db.raw('count(p.id)::int AS product_count'));
  }

  /**
   * A new product, its stock on hand and (optionally) its photo, in one transaction. The SKU is
   * unique whatever its case (the database's unique index decides a race).
   */
  async createProduct(
    trx: Trx,
    actor: Actor,
    draft: ProductDraft,
    extra: { stock: { qty: number; reason: string }; photo?: NormalizedPhoto | null },
  ): Promise<ProductSaveResult> {
    const v = validateProduct(draft);
    if (!v.ok) return { kind: 'invalid', errors: v.errors };
    if (!(await trx('categories').where({ id: v.values.category_id }).first('id'))) return { kind: 'invalid', errors: { categoryId: 'unknown-category' } };
    const imageId = extra.photo ? await storePhoto(trx, extra.photo) : null;
    const [{ max }] = await trx('products').max<{ max: number | null }[]>({ max: 'sort_order' });
    let id: number;
    try {
      // A savepoint: a duplicate SKU must not abort the caller's transaction.
      id = await trx.transaction(async (sp) => {
        const [row] = await sp('products')
          .insert({ ...v.values, image_id: imageId, image_url: null, sort_order: (max ?? 0) + 1 })
          .returning('id');
        return Number(row.id);
      });
    } catch (err) {
      if (isUniqueViolation(err)) return { kind: 'invalid', errors: { sku: 'taken' } };
      throw err;
    }
    const product = (await this.getProduct(trx, id))!;
    await audit(trx, actor, { action: 'product.create', targetType: 'product', targetId: id, after: { ...v.values, image: product.image_hash } });
    const stock = await this.owner.setStock(trx, actor, { productId: id, qty: extra.stock.qty, reason: extra.stock.reason });
    if (stock.kind !== 'set') throw new Error(`new product ${id}: stock could not be set (${stock.kind})`);
    return { kind: 'saved', product: (await this.getProduct(trx, id))! };
  }

  /** Changes a product's catalog fields (not its stock); the audit row keeps the fields that changed. */
  async updateProduct(trx: Trx, actor: Actor, id: number, draft: ProductDraft): Promise<ProductSaveResult> {
    const before = await trx('products').where({ id }).forUpdate().first<ProductValues & { id: number }>('id', 'sku', 'name', 'description', 'price', 'category_id', 'active');
    if (!before) return { kind: 'not-found' };
    const v = validateProduct(draft);
    if (!v.ok) return { kind: 'invalid', errors: v.errors };
    if (!(await trx('categories').where({ id: v.values.category_id }).first('id'))) return { kind: 'invalid', errors: { categoryId: 'unknown-category' } };
    const changed = (Object.keys(v.values) as Array<keyof ProductValues>).filter((k) => v.values[k] !== before[k]);
    if (changed.length) {
      try {
        await trx.transaction(async (sp) => {
          await sp('products').where({ id }).update({ ...v.values, updated_at: sp.fn.now() });
        });
      } catch (err) {
        if (isUniqueViolation(err)) return { kind: 'invalid', errors: { sku: 'taken' } };
        throw err;
      }
      await audit(trx, actor, {
        action: 'product.update',
        targetType: 'product',
        targetId: id,
        before: Object.fromEntries(changed.map((k) => [k, before[k]])),
        after: Object.fromEntries(changed.map((k) => [k, v.values[k]])),
      });
    }
    return { kind: 'saved', product: (await this.getProduct(trx, id))! };
  }

  /** Makes an uploaded (already normalised) photo the product's photo. */
  async setPhoto(trx: Trx, actor: Actor, id: number, photo: NormalizedPhoto): Promise<{ kind: 'saved'; hash: string } | { kind: 'not-found' }> {
    const before = await trx('products as p').leftJoin('product_images as pi', 'pi.id', 'p.image_id').where('p.id', id).forUpdate('p').first('p.id', 'p.image_url', 'pi.sha256');
    if (!before) return { kind: 'not-found' };
    const imageId = await storePhoto(trx, photo);
    await trx('products').where({ id }).update({ image_id: imageId, updated_at: trx.fn.now() });
    await audit(trx, actor, {
      action: 'product.photo',
      targetType: 'product',
      targetId: id,
      before: { image: before.sha256 ?? before.image_url ?? null },
      after: { image: photo.sha256, width: photo.width, height: photo.height, bytes: photo.bytes.length },
    });
    return { kind: 'saved', hash: photo.sha256 };
  }

  /** Sets stock on hand from the product page: the same use case (and rule) as the chat's 庫存. */
  setStock(trx: Trx, actor: Actor, id: number, qty: number, reason: string): Promise<StockSetResult> {
    return this.owner.setStock(trx, actor, { productId: id, qty, reason });
  }

  async createCategory(trx: Trx, actor: Actor, rawName: string): Promise<CategoryResult> {
    const name = tidy(rawName);
    const bad = await this.checkCategoryName(trx, name, null);
    if (bad) return { kind: 'invalid', errors: { name: bad } };
    await trx.raw('LOCK TABLE categories IN SHARE ROW EXCLUSIVE MODE'); // one new position at a time
    const [{ max }] = await trx('categories').max<{ max: number | null }[]>({ max: 'sort_order' });
    const [row] = await trx('categories')
      .insert({ name, slug: `c-${crypto.randomBytes(6).toString('hex')}`, sort_order: (max ?? 0) + 1 })
      .returning(['id', 'name', 'sort_order']);
    await audit(trx, actor, { action: 'category.create', targetType: 'category', targetId: row.id, after: { name } });
    return { kind: 'saved', category: row };
  }

  async renameCategory(trx: Trx, actor: Actor, id: number, rawName: string): Promise<CategoryResult> {
    const before = await trx('categories').where({ id }).forUpdate().first('id', 'name', 'sort_order');
    if (!before) return { kind: 'not-found' };
    const name = tidy(rawName);
    const bad = await this.checkCategoryName(trx, name, id);
    if (bad) return { kind: 'invalid', errors: { name: bad } };
    if (name !== before.name) {
      await trx('categories').where({ id }).update({ name });
      await audit(trx, actor, { action: 'category.rename', targetType: 'category', targetId: id, before: { name: before.name }, after: { name } });
    }
    return { kind: 'saved', category: { ...before, name } };
  }

  /** Moves a category one place up or down; every position is renumbered 1..n. */
  async moveCategory(trx: Trx, actor: Actor, id: number, direction: 'up' | 'down'): Promise<{ kind: 'moved' | 'unchanged' | 'not-found' }> {
    const all: Category[] = await trx('categories').orderBy([{ column: 'sort_order' }, { column: 'id' }]).forUpdate().select('id', 'name', 'sort_order');
    const i = all.findIndex((c) => c.id === id);
    if (i < 0) return { kind: 'not-found' };
    const j = direction === 'up' ? i - 1 : i + 1;
    if (j < 0 || j >= all.length) return { kind: 'unchanged' };
    const order = all.map((c) => c.id);
    [order[i], order[j]] = [order[j]!, order[i]!];
    for (const [pos, cid] of order.entries()) {
      if (all.find((c) => c.id === cid)!.sort_order !== pos + 1) await trx('categories').where({ id: cid }).update({ sort_order: pos + 1 });
    }
    await audit(trx, actor, { action: 'category.reorder', targetType: 'category', targetId: id, before: { order: all.map((c) => c.id) }, after: { order } });
    return { kind: 'moved' };
  }

  private async checkCategoryName(trx: Trx, name: string, exceptId: number | null): Promise<FieldError | null> {
    if (!name) return 'required';
    if (name.length > PRODUCT_LIMITS.categoryName) return 'too-long';
    const q = trx('categories').whereRaw('lower(name) = lower(?)', [name]);
    if (exceptId !== null) q.whereNot({ id: exceptId });
    return (await q.first('id')) ? 'taken' : null;
  }
}
