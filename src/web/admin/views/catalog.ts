import type { AdminProduct, Category, FieldErrors, ProductDraft, ProductQuery } from '../../../domain/catalog-admin';
import { PRODUCT_LIMITS, PRODUCT_SORTS } from '../../../domain/catalog-admin';
import { available } from '../../../domain/catalog';
import { productImageUrl } from '../../../domain/photo-urls';
import { ADMIN } from '../../../texts';
import { html, Html, when } from '../html';
import { field, formGuard, money, page, PageContext, pager } from '../layout';

const P = ADMIN.products;
const F = ADMIN.productForm;
const C = ADMIN.categories;

/** The zh-TW message for a field's error code. */
export function fieldMessage(fieldName: string, code: string | undefined): string | null {
  if (!code) return null;
  return ADMIN.fieldErrorFor[fieldName]?.[code] ?? ADMIN.fieldError[code] ?? code;
}

export function productListPage(
  ctx: PageContext,
  baseUrl: string,
  r: { products: AdminProduct[]; total: number; page: number; pages: number },
  q: ProductQuery,
  categories: Category[],
): Html {
  const items = r.products.map(
    (p) => html`<li><img class="thumb" src="${productImageUrl(baseUrl, p)}" alt="" loading="lazy">
<div class="pmain"><a href="/admin/products/${p.id}">${p.name}</a>
<div class="pmeta">${p.sku} ・ ${p.category_name} ${p.active ? html`<span class="badge ok">${P.active}</span>` : html`<span class="badge">${P.inactive}</span>`}</div>
<div class="pmeta">${P.stockLine(available(p), p.stock_on_hand, p.stock_reserved)}</div></div>
<div class="pprice">${money(p.price)}</div></li>`,
  );
  const cats = categories.map((c) => html`<option value="${c.id}"${when(q.categoryId === c.id, 'selected')}>${c.name}</option>`);
  const sorts = PRODUCT_SORTS.map((s) => html`<option value="${s}"${when((q.sort ?? 'position') === s, 'selected')}>${P.sorts[s]}</option>`);
  return page(
    ctx,
    'products',
    P.title,
    html`<div class="toolbar"><a class="btn primary" href="/admin/products/new">${P.newProduct}</a><a class="btn" href="/admin/export/products.csv">${ADMIN.exportCsv}</a></div>
<form class="card filters" method="get" action="/admin/products" role="search">
<div class="wide"><label for="q">${ADMIN.search}</label><input id="q" type="search" name="q" value="${q.q ?? ''}" placeholder="${P.searchPlaceholder}"></div>
<div><label for="category">${F.category}</label><select id="category" name="category"><option value="">${P.allCategories}</option>${cats}</select></div>
<div><label for="sort">${P.sortLabel}</label><select id="sort" name="sort">${sorts}</select></div>
<div><button type="submit">${ADMIN.search}</button></div>
</form>
<section class="card">${items.length ? html`<ul class="plist">${items}</ul>` : html`<p class="muted">${P.empty}</p>`}
${pager('/admin/products', { q: q.q, category: q.categoryId, sort: q.sort }, r.page, r.pages, r.total)}</section>`,
  );
}

/** The product form as typed: the draft the use cases judge, plus the initial stock of a new product. */
export type ProductFormValues = ProductDraft & { stock: string };

export function productFormPage(
  ctx: PageContext,
  baseUrl: string,
  args: {
    product: AdminProduct | null;
    values: ProductFormValues;
    errors: FieldErrors & { photo?: string };
    categories: Category[];
    stockForm?: { values: { stock: string; reason: string }; errors: FieldErrors };
  },
): Html {
  const { product: p, values: v, errors: e } = args;
  const err = (k: keyof FieldErrors) => fieldMessage(k, e[k]);
  const cats = args.categories.map((c) => html`<option value="${c.id}"${when(v.categoryId === String(c.id), 'selected')}>${c.name}</option>`);
  const hasErrors = Object.keys(e).length > 0;
  const form = html`<form class="card" method="post" enctype="multipart/form-data" action="${p ? `/admin/products/${p.id}` : '/admin/products'}" id="product-form">
${formGuard(ctx)}${hasErrors ? html`<div class="flash bad" role="alert">${F.fixErrors}</div>` : ''}
${field({ label: F.name, name: 'name', value: v.name, required: true, maxlength: PRODUCT_LIMITS.name, error: err('name') })}
${field({ label: F.sku, name: 'sku', value: v.sku, required: true, hint: F.skuHint, maxlength: 40, autocapitalize: 'characters', error: err('sku') })}
${field({ label: F.price, name: 'price', value: v.price, required: true, hint: F.priceHint, inputmode: 'numeric', error: err('price') })}
<label for="f-categoryId">${F.category}</label><select id="f-categoryId" name="categoryId" required${when(!!e.categoryId, 'class="bad"')}><option value="">${ADMIN.none}</option>${cats}</select>${
    err('categoryId') ? html`<span class="err">${err('categoryId')}</span>` : ''
  }
<label for="f-description">${F.description}</label><textarea id="f-description" name="description" maxlength="${PRODUCT_LIMITS.description}"${when(!!e.description, 'class="bad"')}>${v.description}</textarea>${
    err('description') ? html`<span class="err">${err('description')}</span>` : ''
  }
${p ? '' : field({ label: F.stock, name: 'stock', value: v.stock, required: true, hint: F.stockHint, inputmode: 'numeric', error: err('stock') })}
<label for="f-photo">${F.photo}<span class="hint">${F.photoHint}</span></label>
${p ? html`<img class="photo" src="${productImageUrl(baseUrl, p)}" alt="${F.photoCurrent}">` : ''}
<input id="f-photo" name="photo" type="file" accept="image/jpeg,image/png,image/webp,image/heic,image/heif,image/*">${e.photo ? html`<span class="err" role="alert">${e.photo}</span>` : ''}
<label class="check" for="f-active"><input id="f-active" type="checkbox" name="active" value="1"${when(v.active, 'checked')}>${F.active}</label><span class="hint">${F.activeHint}</span>
<div class="actions"><button class="primary" type="submit">${ADMIN.save}</button><a class="btn" href="/admin/products">${ADMIN.back}</a></div>
</form>`;
  const stock = p && args.stockForm ? stockCard(ctx, baseUrl, p, args.stockForm) : '';
  return page(ctx, 'products', p ? P.editProduct : P.newProduct, html`${stock}${form}`);
}

function stockCard(ctx: PageContext, baseUrl: string, p: AdminProduct, s: { values: { stock: string; reason: string }; errors: FieldErrors }): Html {
  return html`<section class="card"><div class="phead"><img class="thumb" src="${productImageUrl(baseUrl, p)}" alt=""><div class="pmain"><b>${p.name}</b>
<div class="pmeta">${p.sku} ・ ${money(p.price)} ${p.active ? html`<span class="badge ok">${P.active}</span>` : html`<span class="badge">${P.inactive}</span>`}</div></div></div>
<form method="post" action="/admin/products/${p.id}/stock" id="stock-form">${formGuard(ctx)}
<h2>${F.stockTitle}</h2><p class="small muted">${P.stockLine(available(p), p.stock_on_hand, p.stock_reserved)}</p>
<div class="two"><div>${field({ label: F.stock, name: 'stock', value: s.values.stock, required: true, inputmode: 'numeric', error: fieldMessage('stock', s.errors.stock) })}</div>
<div>${field({ label: F.reason, name: 'reason', value: s.values.reason, required: true, placeholder: F.reasonPlaceholder, maxlength: PRODUCT_LIMITS.reason, error: fieldMessage('reason', s.errors.reason) })}</div></div>
<p class="hint">${F.stockHint}</p>
<div class="actions"><button class="primary" type="submit">${ADMIN.save}</button></div></form></section>`;
}

export function categoriesPage(ctx: PageContext, categories: Category[], add: { name: string; error: string | null }, renameError?: { id: number; name: string; error: string }): Html {
  const rows = categories.map((c, i) => {
    const bad = renameError?.id === c.id ? renameError : null;
    return html`<div class="catrow" id="cat-${c.id}">
<form class="rename" method="post" action="/admin/categories/${c.id}">${formGuard(ctx)}<input type="text" name="name" aria-label="${C.name}" value="${bad ? bad.name : c.name}" maxlength="${PRODUCT_LIMITS.categoryName}" required${when(!!bad, 'class="bad"')}><button type="submit">${ADMIN.save}</button></form>
<span class="count">${C.products(c.product_count ?? 0)}</span>
<form method="post" action="/admin/categories/${c.id}/move">${formGuard(ctx)}<input type="hidden" name="direction" value="up"><button class="small" type="submit"${when(i === 0, 'disabled')} aria-label="${C.up} ${c.name}">↑ ${C.up}</button></form>
<form method="post" action="/admin/categories/${c.id}/move">${formGuard(ctx)}<input type="hidden" name="direction" value="down"><button class="small" type="submit"${when(i === categories.length - 1, 'disabled')} aria-label="${C.down} ${c.name}">↓ ${C.down}</button></form>
${bad ? html`<span class="err">${bad.error}</span>` : ''}</div>`;
  });
  return page(
    ctx,
    'categories',
    C.title,
    html`<section class="card">${rows.length ? rows : html`<p class="muted">${C.empty}</p>`}</section>
<form class="card" method="post" action="/admin/categories" id="category-form">${formGuard(ctx)}<h2>${C.add}</h2>
${field({ label: C.name, name: 'name', value: add.name, required: true, maxlength: PRODUCT_LIMITS.categoryName, error: add.error })}<div class="actions"><button class="primary" type="submit">${C.add}</button></div></form>`,
  );
}
