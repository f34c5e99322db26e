import crypto from 'node:crypto';
import express, { NextFunction, Request, Response, Router } from 'express';
import type { Container } from '../../container';
import type { Trx } from '../../data/db';
import type { AfterCommit } from '../../data/unit-of-work';
import { listAudit } from '../../domain/audit';
import { available } from '../../domain/catalog';
import { PRODUCT_SORTS, ProductDraft, ProductQuery, ProductSort, validateProduct, validateStock } from '../../domain/catalog-admin';
import { dashboard, isDay, listOrders, ORDER_STATUSES, orderDetail, orderExportRows, parseRefundAmount, parseShipment, productExportRows } from '../../domain/order-admin';
import type { OrderStatus } from '../../domain/orders';
import { OwnerSession, SESSION_MAX_DAYS } from '../../domain/owner-access';
import { MAX_UPLOAD_BYTES, NormalizedPhoto, normalizePhoto } from '../../domain/photos';
import { productImageUrl } from '../../domain/photo-urls';
import { balancesOf } from '../../domain/members/ledger';
import { normalizeCode } from '../../domain/members/member-codes';
import { chargeText, refundText, shipText } from '../../line/owner-commands';
import { ADMIN, ADMIN_MEMBERS, METHOD_LABEL, SHIPMENT, STATUS_LABEL, T, taipeiTime } from '../../texts';
import { ASSETS } from './assets';
import { streamCsv } from './csv';
import type { Html } from './html';
import { Flash, messagePage, PageContext } from './layout';
import { MultipartError, MultipartForm, parseMultipart } from './multipart';
import { QuotaCache } from './quota-cache';
import {
  actorOf, adminHeaders, clearSessionCookie, cookieSpec, csrfMatches, loadSession, newFormKey, readCookie, sameOrigin, setSessionCookie,
} from './security';
import { auditPage } from './views/audit';
import { categoriesPage, fieldMessage, productFormPage, ProductFormValues, productListPage } from './views/catalog';
import { dashboardPage } from './views/dashboard';
import { ChargeForm, memberPage, membersPage } from './views/members';
import { ActionForms, orderDetailPage, ordersPage } from './views/orders';

/**
 * The owner's back office: server-rendered pages under /admin. Routes only translate HTTP to use
 * cases and results to pages; every rule is in src/domain/. Every POST is a form guarded by the
 * session's CSRF token and an idempotency key: a repeat of a submission gets the first one's
 * outcome (the same redirect and message) and changes nothing.
 */

type Done = { kind: 'done'; redirect: string; flash: Flash };
type Outcome<R> = Done | { kind: 'render'; render: R };

/** Carries a result out of a transaction that must not commit (invalid input: the form key stays free). */
class Rollback<R> extends Error {
  constructor(readonly outcome: Outcome<R>) {
    super('rollback');
  }
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const intParam = (v: unknown): number | null => (typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : null);
const withDone = (path: string, key: string) => `${path}${path.includes('?') ? '&' : '?'}done=${encodeURIComponent(key)}`;

export function adminRouter(c: Container): Router {
  const router = Router();
  const spec = cookieSpec(c.config.publicBaseUrl);
  const publicOrigin = new URL(c.config.publicBaseUrl).origin;
  const base = c.config.publicBaseUrl;
  const quota = new QuotaCache(() => c.line.messageQuota());
  const urlencoded = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 50 });

  for (const a of [ASSETS.css, ASSETS.js]) {
    router.get(a.path, (_req, res) => {
      res.setHeader('Content-Type', a.type);
      res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.send(a.body);
    });
  }

  router.use('/admin', adminHeaders);
  const send = (res: Response, status: number, body: Html) => res.status(status).type('text/html; charset=utf-8').send(body.value);

  // ---- Login: the one-time link from LINE. The token never outlives this request: the answer
  // is a redirect (so the next page's URL, and any Referer, no longer carries it).
  router.get('/admin/login/:token', async (req, res, next) => {
    // A HEAD (a link checker) must not use the token up: only a browser's GET logs in.
    if (req.method === 'HEAD') return void res.status(204).end();
    try {
      const origin = { ip: req.ip ?? null, userAgent: (req.get('user-agent') ?? '').slice(0, 300) };
      const r = await c.uow.run((trx) => c.access.login(trx, req.params.token!, origin, readCookie(req, spec.name)));
      if (r.kind === 'ok') {
        setSessionCookie(res, spec, r.sessionToken, SESSION_MAX_DAYS * 86400);
        res.redirect(303, '/admin');
        return;
      }
      const [status, title, body] =
        r.kind === 'used' ? [410, ADMIN.loginLinkUsedTitle, ADMIN.loginAgain]
        : r.kind === 'expired' ? [410, ADMIN.loginLinkExpiredTitle, ADMIN.loginAgain]
        : r.kind === 'not-owner' ? [403, ADMIN.loginNotOwnerTitle, ADMIN.loginNotOwnerBody]
        : [404, ADMIN.loginLinkInvalidTitle, ADMIN.loginAgain];
      send(res, status, messagePage(title, body, '⚠️'));
    } catch (err) {
      next(err);
    }
  });

  // ---- Everything else needs a live owner session: without one, a login-help page (never data).
  router.use('/admin', loadSession(c.access, c.db, spec), (req, res, next) => {
    if (res.locals.session) return next();
    if (readCookie(req, spec.name) !== undefined) clearSessionCookie(res, spec);
    if (req.method === 'GET' || req.method === 'HEAD') return send(res, 401, messagePage(ADMIN.loginHelpTitle, ADMIN.loginHelpBody));
    req.resume();
    res.setHeader('Connection', 'close');
    return send(res, 401, messagePage(ADMIN.sessionGoneTitle, ADMIN.sessionGoneBody, '⚠️'));
  });

  // ---- Every POST: from our origin, and (once its body is read) with the session's CSRF token.
  router.post('/admin*path', (req, res, next) => {
    if (sameOrigin(req, publicOrigin)) return next();
    req.resume();
    res.setHeader('Connection', 'close');
    return send(res, 403, messagePage(ADMIN.forbiddenTitle, ADMIN.forbiddenBody, '⚠️'));
  });
  const forbidden = (res: Response) => send(res, 403, messagePage(ADMIN.forbiddenTitle, ADMIN.forbiddenBody, '⚠️'));
  const session = (res: Response) => res.locals.session as OwnerSession;

  async function ctxFor(req: Request, res: Response): Promise<PageContext> {
    const s = session(res);
    const me = await c.db('line_users').where({ user_id: s.userId }).first('display_name');
    let flash: Flash | null = null;
    const done = str(req.query.done);
    if (done) {
      const r = (await c.access.formResult(c.db, s.id, done)) as Done | null;
      if (r?.flash) flash = r.flash;
    }
    return { csrf: s.csrfToken, formKey: newFormKey, ownerName: me?.display_name ?? ADMIN.order.actor.owner!, flash };
  }

  /** Display names of the configured owners, for "who did it". */
  async function ownerNames(): Promise<Map<string, string>> {
    const rows = await c.db('line_users').whereIn('user_id', [...c.config.ownerLineUserIds]).whereNotNull('display_name').select('user_id', 'display_name');
    return new Map(rows.map((r) => [r.user_id, r.display_name]));
  }

  /**
   * Runs one form submission as one transaction, once per form key: a repeat gets the stored
   * outcome; an outcome that re-renders the form (invalid input) rolls back and frees the key.
   */
  async function runForm<R>(res: Response, key: string, fn: (trx: Trx, after: AfterCommit) => Promise<Outcome<R>>): Promise<Outcome<R> | null> {
    const s = session(res);
    try {
      return await c.uow.run(async (trx, after) => {
        const claim = await c.access.claimForm(trx, s.id, key);
        if (claim.kind === 'bad-key') throw new Rollback<R>({ kind: 'render', render: null as R });
        if (claim.kind === 'repeat') return claim.result as Done;
        const out = await fn(trx, after);
        if (out.kind !== 'done') throw new Rollback(out);
        await c.access.saveFormResult(trx, s.id, key, out);
        return out;
      });
    } catch (err) {
      if (err instanceof Rollback) return err.outcome.kind === 'render' && err.outcome.render === null ? null : (err.outcome as Outcome<R>);
      throw err;
    }
  }

  /** Sends a form's outcome: the redirect (with its message), a re-rendered page, or 400 for a form without a key. */
  async function finish<R>(req: Request, res: Response, key: string, out: Outcome<R> | null, render: (r: R, ctx: PageContext) => Html | Promise<Html>): Promise<void> {
    if (!out) return void send(res, 400, messagePage(ADMIN.forbiddenTitle, ADMIN.forbiddenBody, '⚠️'));
    if (out.kind === 'done') return void res.redirect(303, withDone(out.redirect, key));
    send(res, 422, await render(out.render, await ctxFor(req, res)));
  }

  /** Reads a urlencoded POST and checks its CSRF token. */
  const form = [
    urlencoded,
    (req: Request, res: Response, next: NextFunction) => {
      if (!csrfMatches(session(res), req.body?._csrf)) return forbidden(res);
      next();
    },
  ];

  const h = (fn: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, next: NextFunction) => fn(req, res).catch(next);

  // ---- Dashboard
  router.get('/admin', h(async (req, res) => {
    const [d, low, q] = [await dashboard(c.db), await c.owner.lowStock(c.db), await quota.get()];
    send(res, 200, dashboardPage(await ctxFor(req, res), d, low, q, c.owner.lowStockThreshold));
  }));

  // ---- Products
  const productQuery = (req: Request): ProductQuery => ({
    q: str(req.query.q).slice(0, 100),
    categoryId: intParam(req.query.category),
    sort: PRODUCT_SORTS.includes(str(req.query.sort) as ProductSort) ? (str(req.query.sort) as ProductSort) : 'position',
    page: intParam(req.query.page) ?? 1,
  });
  router.get('/admin/products', h(async (req, res) => {
    const q = productQuery(req);
    const r = await c.catalogAdmin.listProducts(c.db, q);
    send(res, 200, productListPage(await ctxFor(req, res), base, r, q, await c.catalogAdmin.listCategories(c.db)));
  }));

  const draftOf = (f: Record<string, string>): ProductDraft => ({
    sku: str(f.sku), name: str(f.name), description: str(f.description), price: str(f.price), categoryId: str(f.categoryId), active: f.active === '1',
  });
  const valuesOf = (f: Record<string, string>): ProductFormValues => ({ ...draftOf(f), stock: str(f.stock) });

  router.get('/admin/products/new', h(async (req, res) => {
    const categories = await c.catalogAdmin.listCategories(c.db);
    const values: ProductFormValues = { sku: '', name: '', description: '', price: '', categoryId: categories[0] ? String(categories[0].id) : '', active: true, stock: '0' };
    send(res, 200, productFormPage(await ctxFor(req, res), base, { product: null, values, errors: {}, categories }));
  }));

  /** Reads a product form (multipart, with its photo), checks its CSRF token and turns the photo into a product photo. */
  async function readProductForm(req: Request, res: Response): Promise<{ form: MultipartForm; photo: NormalizedPhoto | null; photoError: string | null } | null> {
    let form: MultipartForm;
    try {
      form = await parseMultipart(req, { maxFileBytes: MAX_UPLOAD_BYTES, maxBodyBytes: 3 * MAX_UPLOAD_BYTES });
    } catch (err) {
      if (!(err instanceof MultipartError)) throw err;
      res.setHeader('Connection', 'close');
      if (err.code === 'too-large') send(res, 413, messagePage(ADMIN.tooLargeTitle, ADMIN.tooLargeBody, '⚠️', { href: req.originalUrl, label: ADMIN.back }));
      else send(res, 400, messagePage(ADMIN.forbiddenTitle, ADMIN.forbiddenBody, '⚠️'));
      return null;
    }
    if (!csrfMatches(session(res), form.fields._csrf)) {
      forbidden(res);
      return null;
    }
    if (!form.file) return { form, photo: null, photoError: null };
    if (form.file.tooLarge) return { form, photo: null, photoError: ADMIN.photoRefused['too-large']! };
    const r = await normalizePhoto(form.file.data);
    if (r.kind === 'refused') return { form, photo: null, photoError: ADMIN.photoRefused[r.reason] ?? ADMIN.photoRefused.unreadable! };
    return { form, photo: r.photo, photoError: null };
  }

  type ProductRender = { errors: Record<string, string | undefined>; values: ProductFormValues; id: number | null };
  const renderProductForm = async (r: ProductRender, ctx: PageContext) => {
    const product = r.id ? ((await c.catalogAdmin.getProduct(c.db, r.id)) ?? null) : null;
    const stockForm = product ? { values: { stock: String(product.stock_on_hand), reason: '' }, errors: {} } : undefined;
    return productFormPage(ctx, base, { product, values: r.values, errors: r.errors, categories: await c.catalogAdmin.listCategories(c.db), stockForm });
  };

  router.post('/admin/products', h(async (req, res) => {
    const read = await readProductForm(req, res);
    if (!read) return;
    const { form, photo, photoError } = read;
    const values = valuesOf(form.fields);
    const stock = validateStock(values.stock, ADMIN.productForm.initialStockReason, false);
    const fieldErrors = { ...(validateProduct(draftOf(form.fields)).ok ? {} : (validateProduct(draftOf(form.fields)) as { errors: Record<string, string> }).errors), ...(stock.ok ? {} : stock.errors) };
    const key = str(form.fields._key);
    let out: Outcome<ProductRender> | null;
    if (photoError || !stock.ok) {
      out = { kind: 'render', render: { errors: { ...fieldErrors, photo: photoError ?? undefined }, values, id: null } };
    } else {
      out = await runForm<ProductRender>(res, key, async (trx) => {
        const r = await c.catalogAdmin.createProduct(trx, actorOf(req, session(res)), draftOf(form.fields), { stock: { qty: stock.qty, reason: stock.reason }, photo });
        if (r.kind !== 'saved') return { kind: 'render', render: { errors: r.kind === 'invalid' ? r.errors : {}, values, id: null } };
        return { kind: 'done', redirect: `/admin/products/${r.product.id}`, flash: { tone: 'ok', text: ADMIN.productForm.created(r.product.name) } };
      });
    }
    await finish(req, res, key, out, renderProductForm);
  }));

  router.get('/admin/products/:id', h(async (req, res) => {
    const id = intParam(req.params.id);
    const p = id ? await c.catalogAdmin.getProduct(c.db, id) : undefined;
    if (!p) return void send(res, 404, messagePage(ADMIN.notFoundTitle, '', '🔍', { href: '/admin/products', label: ADMIN.back }));
    const values: ProductFormValues = { sku: p.sku, name: p.name, description: p.description, price: String(p.price), categoryId: String(p.category_id), active: p.active, stock: String(p.stock_on_hand) };
    send(res, 200, productFormPage(await ctxFor(req, res), base, {
      product: p, values, errors: {}, categories: await c.catalogAdmin.listCategories(c.db), stockForm: { values: { stock: String(p.stock_on_hand), reason: '' }, errors: {} },
    }));
  }));

  router.post('/admin/products/:id', h(async (req, res) => {
    const id = intParam(req.params.id) ?? 0;
    const read = await readProductForm(req, res);
    if (!read) return;
    const { form, photo, photoError } = read;
    const values = valuesOf(form.fields);
    const key = str(form.fields._key);
    let out: Outcome<ProductRender> | null;
    if (photoError) {
      const v = validateProduct(draftOf(form.fields));
      out = { kind: 'render', render: { errors: { ...(v.ok ? {} : v.errors), photo: photoError }, values, id } };
    } else {
      out = await runForm<ProductRender>(res, key, async (trx) => {
        const actor = actorOf(req, session(res));
        const r = await c.catalogAdmin.updateProduct(trx, actor, id, draftOf(form.fields));
        if (r.kind === 'not-found') return { kind: 'done', redirect: '/admin/products', flash: { tone: 'bad', text: ADMIN.notFoundTitle } };
        if (r.kind === 'invalid') return { kind: 'render', render: { errors: r.errors, values, id } };
        if (photo) await c.catalogAdmin.setPhoto(trx, actor, id, photo);
        return { kind: 'done', redirect: `/admin/products/${id}`, flash: { tone: 'ok', text: photo ? `${ADMIN.productForm.saved} ${ADMIN.productForm.photoSaved}` : ADMIN.productForm.saved } };
      });
    }
    await finish(req, res, key, out, renderProductForm);
  }));

  type StockRender = { id: number; stock: string; reason: string; errors: Record<string, string> };
  router.post('/admin/products/:id/stock', form, h(async (req, res) => {
    const id = intParam(req.params.id) ?? 0;
    const key = str(req.body._key);
    const v = validateStock(str(req.body.stock), str(req.body.reason));
    const out: Outcome<StockRender> | null = !v.ok
      ? { kind: 'render', render: { id, stock: str(req.body.stock), reason: str(req.body.reason), errors: v.errors } }
      : await runForm<StockRender>(res, key, async (trx) => {
          const r = await c.catalogAdmin.setStock(trx, actorOf(req, session(res)), id, v.qty, v.reason);
          const redirect = `/admin/products/${id}`;
          if (r.kind === 'unknown') return { kind: 'done', redirect: '/admin/products', flash: { tone: 'bad', text: ADMIN.notFoundTitle } };
          if (r.kind === 'below-reserved') return { kind: 'done', redirect, flash: { tone: 'bad', text: ADMIN.productForm.stockBelowReserved(r.reserved) } };
          return { kind: 'done', redirect, flash: { tone: 'ok', text: ADMIN.productForm.stockSet(r.qty, r.available) } };
        });
    await finish(req, res, key, out, async (r, ctx) => {
      const p = (await c.catalogAdmin.getProduct(c.db, r.id))!;
      const values: ProductFormValues = { sku: p.sku, name: p.name, description: p.description, price: String(p.price), categoryId: String(p.category_id), active: p.active, stock: String(p.stock_on_hand) };
      return productFormPage(ctx, base, { product: p, values, errors: {}, categories: await c.catalogAdmin.listCategories(c.db), stockForm: { values: { stock: r.stock, reason: r.reason }, errors: r.errors } });
    });
  }));

  // ---- Categories
  type CategoryRender = { add: { name: string; error: string | null }; rename?: { id: number; name: string; error: string } };
  const renderCategories = async (r: CategoryRender, ctx: PageContext) => categoriesPage(ctx, await c.catalogAdmin.listCategories(c.db), r.add, r.rename);
  router.get('/admin/categories', h(async (req, res) => {
    send(res, 200, categoriesPage(await ctxFor(req, res), await c.catalogAdmin.listCategories(c.db), { name: '', error: null }));
  }));
  router.post('/admin/categories', form, h(async (req, res) => {
    const key = str(req.body._key);
    const out = await runForm<CategoryRender>(res, key, async (trx) => {
      const r = await c.catalogAdmin.createCategory(trx, actorOf(req, session(res)), str(req.body.name));
      if (r.kind === 'invalid') return { kind: 'render', render: { add: { name: str(req.body.name), error: fieldMessage('name', r.errors.name) } } };
      if (r.kind === 'not-found') throw new Error('unreachable');
      return { kind: 'done', redirect: '/admin/categories', flash: { tone: 'ok', text: ADMIN.categories.created(r.category.name) } };
    });
    await finish(req, res, key, out, renderCategories);
  }));
  router.post('/admin/categories/:id', form, h(async (req, res) => {
    const id = intParam(req.params.id) ?? 0;
    const key = str(req.body._key);
    const out = await runForm<CategoryRender>(res, key, async (trx) => {
      const r = await c.catalogAdmin.renameCategory(trx, actorOf(req, session(res)), id, str(req.body.name));
      if (r.kind === 'invalid') return { kind: 'render', render: { add: { name: '', error: null }, rename: { id, name: str(req.body.name), error: fieldMessage('name', r.errors.name)! } } };
      if (r.kind === 'not-found') return { kind: 'done', redirect: '/admin/categories', flash: { tone: 'bad', text: ADMIN.notFoundTitle } };
      return { kind: 'done', redirect: '/admin/categories', flash: { tone: 'ok', text: ADMIN.categories.renamed(r.category.name) } };
    });
    await finish(req, res, key, out, renderCategories);
  }));
  router.post('/admin/categories/:id/move', form, h(async (req, res) => {
    const id = intParam(req.params.id) ?? 0;
    const key = str(req.body._key);
    const direction = req.body.direction === 'up' ? 'up' : 'down';
    const out = await runForm<CategoryRender>(res, key, async (trx) => {
      const r = await c.catalogAdmin.moveCategory(trx, actorOf(req, session(res)), id, direction);
      return { kind: 'done', redirect: '/admin/categories', flash: r.kind === 'not-found' ? { tone: 'bad', text: ADMIN.notFoundTitle } : { tone: 'ok', text: ADMIN.categories.moved } };
    });
    await finish(req, res, key, out, renderCategories);
  }));

  // ---- Orders
  const orderQuery = (req: Request) => ({
    status: ORDER_STATUSES.includes(str(req.query.status) as OrderStatus) ? (str(req.query.status) as OrderStatus) : null,
    from: isDay(str(req.query.from)) ? str(req.query.from) : null,
    to: isDay(str(req.query.to)) ? str(req.query.to) : null,
    q: str(req.query.q).slice(0, 100),
    page: intParam(req.query.page) ?? 1,
  });
  router.get('/admin/orders', h(async (req, res) => {
    const q = orderQuery(req);
    send(res, 200, ordersPage(await ctxFor(req, res), await listOrders(c.db, q), q));
  }));

  const renderOrder = async (orderNo: string, ctx: PageContext, forms: ActionForms = {}) => {
    const d = await orderDetail(c.db, orderNo, c.shipments);
    if (!d) return messagePage(ADMIN.notFoundTitle, T.orderUnknown(orderNo), '🔍', { href: '/admin/orders', label: ADMIN.back });
    return orderDetailPage(ctx, d, await ownerNames(), forms);
  };
  router.get('/admin/orders/:orderNo', h(async (req, res) => {
    const d = await orderDetail(c.db, str(req.params.orderNo), c.shipments);
    if (!d) return void send(res, 404, messagePage(ADMIN.notFoundTitle, T.orderUnknown(str(req.params.orderNo)), '🔍', { href: '/admin/orders', label: ADMIN.back }));
    send(res, 200, orderDetailPage(await ctxFor(req, res), d, await ownerNames()));
  }));

  const orderPath = (orderNo: string) => `/admin/orders/${encodeURIComponent(orderNo)}`;

  router.post('/admin/orders/:orderNo/ship', form, h(async (req, res) => {
    const orderNo = str(req.params.orderNo);
    const key = str(req.body._key);
    const s = parseShipment(str(req.body.carrier), str(req.body.tracking));
    const out: Outcome<ActionForms> | null = !s.ok
      ? { kind: 'render', render: { ship: { carrier: str(req.body.carrier), tracking: str(req.body.tracking), error: s.error === 'invalid' ? ADMIN.order.trackingInvalid : ADMIN.order.trackingTooLong } } }
      : await runForm<ActionForms>(res, key, async (trx, after) => {
          const r = await c.owner.shipOrder(trx, after, actorOf(req, session(res)), { orderNo, tracking: s.tracking, carrier: s.carrier });
          if (r.kind === 'not-found') return { kind: 'done', redirect: '/admin/orders', flash: { tone: 'bad', text: T.orderUnknown(orderNo) } };
          // Store pickup ignores carrier and tracking: ECPay's shipment number is the tracking number.
          const good = r.kind === 'shipped' || r.kind === 'shipping' || r.kind === 'already';
          return { kind: 'done', redirect: orderPath(orderNo), flash: { tone: good ? 'ok' : 'bad', text: shipText(r) } };
        });
    await finish(req, res, key, out, (forms, ctx) => renderOrder(orderNo, ctx, forms));
  }));

  // The parcel's label at ECPay (§10): a page that posts the signed print form to ECPay's host, top
  // level in its own tab. Its policy allows exactly that form and its one inline script (by hash).
  router.get('/admin/orders/:orderNo/label', h(async (req, res) => {
    const label = await c.shipments.labelPage(str(req.params.orderNo));
    if (!label) return void send(res, 404, messagePage(ADMIN.notFoundTitle, SHIPMENT.noLabel, '🔍', { href: orderPath(str(req.params.orderNo)), label: ADMIN.back }));
    const scripts = [...label.html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => `'sha256-${crypto.createHash('sha256').update(m[1]!).digest('base64')}'`);
    res.setHeader(
      'Content-Security-Policy',
      ["default-src 'none'", "style-src 'unsafe-inline'", `script-src ${scripts.join(' ') || "'none'"}`, `form-action ${new URL(label.action).origin}`, "frame-ancestors 'none'", "base-uri 'none'"].join('; '),
    );
    res.status(200).type('text/html; charset=utf-8').send(label.html);
  }));

  // A new pickup store after the old one closed: ECPay is told first (outside any transaction), then
  // the order's store and the audit row are recorded; the form's key makes a double submit one result.
  router.post('/admin/orders/:orderNo/store', form, h(async (req, res) => {
    const orderNo = str(req.params.orderNo);
    const key = str(req.body._key);
    const storeId = str(req.body.store_id).normalize('NFKC').trim();
    const storeName = str(req.body.store_name).normalize('NFC').trim().replace(/\s+/g, ' ');
    const idError = /^\d{4,6}$/.test(storeId) ? null : SHIPMENT.storeIdInvalid;
    const nameError = storeName && [...storeName].length <= 10 ? null : SHIPMENT.storeNameInvalid;
    let out: Outcome<ActionForms> | null;
    if (idError || nameError) {
      out = { kind: 'render', render: { store: { storeId, storeName, idError, nameError } } };
    } else {
      const r = await c.shipments.changePickupStore(actorOf(req, session(res)), { orderNo, storeId, storeName });
      const text =
        r.kind === 'updated' ? SHIPMENT.storeUpdated(r.orderNo, storeName)
        : r.kind === 'refused' ? SHIPMENT.storeUpdateRefused(r.orderNo, r.message)
        : r.kind === 'busy' ? SHIPMENT.storeUpdateBusy(r.orderNo)
        : r.kind === 'unavailable' ? SHIPMENT.storeUpdateUnavailable(r.orderNo)
        : r.kind === 'not-found' ? T.orderUnknown(r.orderNo)
        : SHIPMENT.storeUpdateNotPossible(r.orderNo);
      out = await runForm<ActionForms>(res, key, async () => ({
        kind: 'done',
        redirect: r.kind === 'not-found' ? '/admin/orders' : orderPath(orderNo),
        flash: { tone: r.kind === 'updated' ? 'ok' : 'bad', text },
      }));
    }
    await finish(req, res, key, out, (forms, ctx) => renderOrder(orderNo, ctx, forms));
  }));

  /** 完成 and 取消訂單: one use case each, no fields; the outcome is a message on the order's page. */
  type SimpleResult = { kind: 'completed' | 'cancelled' | 'not-found' | 'conflict'; status?: string };
  const simpleAction = (action: string, run: (trx: Trx, after: AfterCommit, req: Request, res: Response, orderNo: string) => Promise<SimpleResult>, texts: { ok: (n: string) => string; conflict: (n: string, s: string) => string }) =>
    router.post(`/admin/orders/:orderNo/${action}`, form, h(async (req, res) => {
      const orderNo = str(req.params.orderNo);
      const key = str(req.body._key);
      const out = await runForm<ActionForms>(res, key, async (trx, after) => {
        const r = await run(trx, after, req, res, orderNo);
        if (r.kind === 'not-found') return { kind: 'done', redirect: '/admin/orders', flash: { tone: 'bad', text: T.orderUnknown(orderNo) } };
        if (r.kind === 'conflict') return { kind: 'done', redirect: orderPath(orderNo), flash: { tone: 'bad', text: texts.conflict(orderNo, STATUS_LABEL[r.status!] ?? r.status!) } };
        return { kind: 'done', redirect: orderPath(orderNo), flash: { tone: 'ok', text: texts.ok(orderNo) } };
      });
      await finish(req, res, key, out, (forms, ctx) => renderOrder(orderNo, ctx, forms));
    }));
  simpleAction('complete', (trx, after, req, res, orderNo) => c.owner.completeOrder(trx, after, actorOf(req, session(res)), { orderNo }), {
    ok: T.ownerCompleted,
    conflict: T.ownerStatusConflict,
  });
  simpleAction('cancel', (trx, after, req, res, orderNo) => c.owner.cancelOrder(trx, after, actorOf(req, session(res)), { orderNo }), {
    ok: T.cancelDone,
    conflict: T.cancelNotAllowed,
  });

  router.post('/admin/orders/:orderNo/refund', form, h(async (req, res) => {
    const orderNo = str(req.params.orderNo);
    const key = str(req.body._key);
    const a = parseRefundAmount(str(req.body.amount));
    const out: Outcome<ActionForms> | null = !a.ok
      ? { kind: 'render', render: { refund: { amount: str(req.body.amount), error: ADMIN.order.refundAmountInvalid } } }
      : await runForm<ActionForms>(res, key, async (trx, after) => {
          const r = await c.owner.requestRefund(trx, after, actorOf(req, session(res)), { orderNo, amount: a.amount });
          return { kind: 'done', redirect: orderPath(orderNo), flash: { tone: r.kind === 'requested' || r.kind === 'refunded-to-wallet' ? 'ok' : 'bad', text: refundText(r) } };
        });
    await finish(req, res, key, out, (forms, ctx) => renderOrder(orderNo, ctx, forms));
  }));

  // ---- Exports
  // ---- Members: balances and ledgers, and 收款 (charging a member's one-time code in the shop).
  router.get('/admin/members', h(async (req, res) => {
    send(res, 200, membersPage(await ctxFor(req, res), await c.members.listMembers(c.db)));
  }));

  router.get('/admin/members/:userId', h(async (req, res) => {
    const userId = String(req.params.userId);
    const [user, balances] = [await c.db('line_users').where({ user_id: userId }).first('display_name'), await balancesOf(c.db, userId)];
    const hasAccount = await c.db('member_accounts').where({ line_user_id: userId }).first('id');
    if (!hasAccount) return void send(res, 404, messagePage(ADMIN.notFoundTitle, '', '🔍', { href: '/admin/members', label: ADMIN.back }));
    const standing = await c.members.points.standing(c.db, userId);
    send(res, 200, memberPage(
      await ctxFor(req, res),
      { userId, displayName: user?.display_name ?? null, ...balances, tier: standing.tier.name, earned: standing.earned },
      await c.members.ledger(c.db, userId, 'points'),
      await c.members.ledger(c.db, userId, 'wallet'),
    ));
  }));

  router.post('/admin/charge', form, h(async (req, res) => {
    const key = str(req.body._key);
    const values: ChargeForm = { code: str(req.body.code).trim(), amount: str(req.body.amount).trim() };
    const code = normalizeCode(values.code);
    const amount = /^\d{1,7}$/.test(values.amount) && Number(values.amount) >= 1 && Number(values.amount) <= 1_000_000 ? Number(values.amount) : null;
    const out: Outcome<ChargeForm> | null =
      !code || amount === null
        ? { kind: 'render', render: { ...values, errors: { code: code ? null : ADMIN_MEMBERS.codeInvalid, amount: amount === null ? ADMIN_MEMBERS.amountInvalid : null } } }
        : await runForm<ChargeForm>(res, key, async (trx, after) => {
            const r = await c.members.codes.charge(trx, after, actorOf(req, session(res)), { code, amount });
            return { kind: 'done', redirect: '/admin/members', flash: { tone: r.kind === 'charged' ? 'ok' : 'bad', text: chargeText(r) } };
          });
    await finish(req, res, key, out, async (f, ctx) => membersPage(ctx, await c.members.listMembers(c.db), f));
  }));

  router.get('/admin/export/orders.csv', h(async (req, res) => {
    const q = orderQuery(req);
    const name = `orders-${q.from ?? 'all'}-${q.to ?? taipeiTime(new Date()).slice(0, 10).replace(/\//g, '-')}.csv`;
    const H = ADMIN.csv;
    await streamCsv(res, name, H.orders, orderExportRows(c.db, q), ({ order: o, displayName, line }) => [
      o.order_no, taipeiTime(o.created_at), STATUS_LABEL[o.status] ?? o.status, displayName ?? '', o.payment_method ? METHOD_LABEL[o.payment_method] ?? o.payment_method : '',
      o.paid_at ? taipeiTime(o.paid_at) : '', o.total, o.paid_amount, o.refunded_amount,
      ...(line.kind === 'goods'
        ? [H.goods, line.l.sku, line.l.name, line.l.unit_price, line.l.qty, line.l.line_total]
        : [H.adjustment, '', line.a.label, '', '', line.a.amount]),
      o.carrier ?? '', o.tracking_no ?? '',
    ]);
  }));
  router.get('/admin/export/products.csv', h(async (_req, res) => {
    const H = ADMIN.csv;
    await streamCsv(res, 'products.csv', H.products, productExportRows(c.db), (p) => [
      p.id, p.sku, p.name, p.category_name, p.price, p.active ? H.yes : H.no, p.stock_on_hand, p.stock_reserved, available(p), p.description, productImageUrl(base, p),
    ]);
  }));

  // ---- Audit log
  router.get('/admin/audit', h(async (req, res) => {
    const group = str(req.query.group);
    const source = str(req.query.source);
    const target = str(req.query.target).normalize('NFKC').trim().slice(0, 60);
    const beforeId = intParam(req.query.before) ?? undefined;
    const f = {
      action: group && group in ADMIN.audit.groups ? `${group}.` : undefined,
      source: source in ADMIN.audit.sources ? (source as 'line' | 'web' | 'system') : undefined,
      targetId: target || undefined,
      beforeId,
      limit: 50,
    };
    const rows = await listAudit(c.db, f);
    const older = rows.length === 50 ? `/admin/audit?${new URLSearchParams({ group, source, target, before: String(rows.at(-1)!.id) }).toString()}` : null;
    send(res, 200, auditPage(await ctxFor(req, res), rows, { group, source, target }, await ownerNames(), older));
  }));

  // ---- Logout
  router.post('/admin/logout', form, h(async (req, res) => {
    const s = session(res);
    await c.uow.run((trx) => c.access.logout(trx, actorOf(req, s), s));
    clearSessionCookie(res, spec);
    send(res, 200, messagePage(ADMIN.loggedOut, ADMIN.loginHelpBody, '👋'));
  }));

  router.use('/admin', (_req, res) => send(res, 404, messagePage(ADMIN.notFoundTitle, '', '🔍', { href: '/admin', label: ADMIN.back })));
  router.use('/admin', (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    c.log.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err), path: req.path }, 'back office error');
    if (res.headersSent) return void res.destroy();
    send(res, 500, messagePage(ADMIN.errorTitle, ADMIN.errorBody('INTERNAL'), '⚠️'));
  });
  return router;
}
