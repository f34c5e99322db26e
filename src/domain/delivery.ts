import crypto from 'node:crypto';
import type { ShippingFees } from '../config';
import type { Db, Trx } from '../data/db';
import type { AfterCommit, UnitOfWork } from '../data/unit-of-work';
import { checkRecipient, type LogisticsPort } from '../gateways/ecpay-logistics';
import { CHAIN_OF, isCvsSubType, type CvsSubType } from '../gateways/ecpay-logistics/sub-types';
import { DELIVERY_ERRORS, DELIVERY_TEXT, CVS_CHAIN_NAME } from '../texts';
import type { Notifier } from './notices';
import { newToken, sha256 } from './delivery-links';
import { setAdjustment } from './order-adjustments';
import { lockOrder, Order, OrderDeliveryColumns, OrderItems, orderItems } from './orders';
import type { ShopMethod } from './payments/types';

/**
 * Delivery at checkout (issue 13, checkout half): after 結帳 the shopper says how the parcel
 * travels (home delivery, or pickup at a store of one chain chosen on ECPay's store map) and who
 * receives it, on a small page opened from the chat. The details are snapshotted on the order, the
 * fee becomes the order's `shipping` adjustment, and only then are payment methods offered
 * (`orders.delivery_ready_at`). Editable until a payment attempt exists (the bank then holds a
 * trade for the total, fee included).
 *
 * The domain speaks neither LINE nor HTML: it returns results and raises notices; line/ renders
 * the chat, web/delivery-routes.ts the page.
 */

export type DeliveryMethod = 'home' | 'cvs';
/** What a shopper picks: home delivery, or one store chain's sub-type. */
export type DeliveryKey = 'home' | CvsSubType;

export interface DeliveryOption {
  key: DeliveryKey;
  method: DeliveryMethod;
  subType: CvsSubType | null;
  /** The fee before the free-shipping threshold (integer TWD). */
  fee: number;
}

/** One order's (or a profile's) delivery details, complete. */
export interface DeliveryDetails {
  method: DeliveryMethod;
  subType: CvsSubType | null;
  recipientName: string;
  recipientPhone: string;
  recipientZip: string | null;
  recipientAddress: string | null;
  storeId: string | null;
  storeName: string | null;
  storeAddress: string | null;
  storeOutside: boolean | null;
}

/** The order columns this module writes (orders.delivery_* and recipient/store snapshot). */
export type { OrderDeliveryColumns } from './orders';

/** A shipment as the shopper's order view shows it (written by the shipments half). */
export interface ShipmentView {
  provider: string;
  shipment_no: string | null;
  validation_no: string | null;
  status: string;
}

interface LinkRow {
  id: number;
  order_id: number;
  token_hash: string;
  map_token: string | null;
  expires_at: Date;
  method: string | null;
  sub_type: string | null;
  csrf_token: string | null;
  draft: DeliveryDraft | null;
}

/** What the page's form posts (every field a string; missing ones are ''). */
export interface DeliveryForm {
  key: string;
  name: string;
  phone: string;
  zip: string;
  address: string;
}

type DeliveryDraft = Partial<DeliveryForm>;

export type FormField = 'key' | 'name' | 'phone' | 'address' | 'store';
export type FormErrors = Partial<Record<FormField, string>>;

/** Why a page (or a map reply) cannot edit the order's delivery. */
export type ClosedReason = 'not-found' | 'link-expired' | 'order-closed' | 'order-paid' | 'payment-started';

export type PageState =
  | { kind: 'closed'; reason: ClosedReason; order?: Order; delivery?: DeliveryDetails | null }
  | {
      kind: 'editable';
      ref: string;
      csrf: string;
      order: Order;
      items: OrderItems;
      options: Array<DeliveryOption & { effectiveFee: number }>;
      /** What the form shows: the draft, else the order's details, else the shopper's last ones. */
      values: DeliveryForm;
      /** The store chosen on the map for the order (its sub-type says which chain). */
      store: { subType: CvsSubType; id: string; name: string; address: string } | null;
      ready: boolean;
    };

export type SubmitResult =
  | { kind: 'saved'; order: Order; delivery: DeliveryDetails }
  | { kind: 'invalid'; errors: FormErrors; state: PageState }
  | { kind: 'closed'; reason: ClosedReason };

export type MapOpenResult = { kind: 'map'; html: string } | { kind: 'invalid'; errors: FormErrors; state: PageState } | { kind: 'closed'; reason: ClosedReason };

export type MapReplyOutcome =
  | { kind: 'stored'; ref: string; complete: boolean }
  | { kind: 'rejected'; reason: string }
  | { kind: 'closed'; reason: ClosedReason; ref: string | null };

export type LinkResult =
  | { kind: 'link'; url: string; order: Order; option: DeliveryOption; expiresAt: Date }
  | { kind: 'unavailable' }
  | { kind: 'not-found'; orderNo: string }
  | { kind: 'closed'; reason: ClosedReason; order: Order };

export type UseLastResult =
  | { kind: 'ready'; order: Order; items: OrderItems; delivery: DeliveryDetails; methods: ShopMethod[] }
  | { kind: 'no-profile' }
  | { kind: 'not-found'; orderNo: string }
  | { kind: 'closed'; reason: ClosedReason; order: Order };

export interface DeliveryChoices {
  order: Order;
  options: Array<DeliveryOption & { effectiveFee: number }>;
  /** The shopper's last details, if they can be used for this order. */
  last: DeliveryDetails | null;
}

export interface DeliveryCheckoutDeps {
  uow: UnitOfWork;
  notifier: Notifier;
  shipping: ShippingFees;
  /** Null: ECPay logistics is not configured, so only home delivery is offered. */
  logistics: LogisticsPort | null;
  publicBaseUrl: string;
  /** The payment methods the shop offers (shown once the details are complete). */
  paymentMethods: () => ShopMethod[];
}

const REF = /^[A-Za-z0-9_-]{20,64}$/;

/** `0912345678` → `0912***678`. */
export function maskPhone(phone: string): string {
  return phone.length >= 8 ? `${phone.slice(0, 4)}***${phone.slice(-3)}` : '***';
}

/** The delivery details an order holds, or null when none were completed. */
export function orderDelivery(o: Order & OrderDeliveryColumns): DeliveryDetails | null {
  if (!o.delivery_ready_at || (o.delivery_method !== 'home' && o.delivery_method !== 'cvs') || !o.recipient_name || !o.recipient_phone) return null;
  const subType = o.delivery_sub_type && isCvsSubType(o.delivery_sub_type) ? o.delivery_sub_type : null;
  return {
    method: o.delivery_method,
    subType,
    recipientName: o.recipient_name,
    recipientPhone: o.recipient_phone,
    recipientZip: o.recipient_zip ?? null,
    recipientAddress: o.recipient_address ?? null,
    storeId: o.store_id ?? null,
    storeName: o.store_name ?? null,
    storeAddress: o.store_address ?? null,
    storeOutside: o.store_outside ?? null,
  };
}

/** How a method is named to shoppers: 宅配, 7-ELEVEN 取貨, 全家 取貨, … */
export function deliveryLabel(d: { method: DeliveryMethod; subType: CvsSubType | null }): string {
  if (d.method === 'home' || !d.subType) return DELIVERY_TEXT.home;
  return DELIVERY_TEXT.cvs(CVS_CHAIN_NAME[CHAIN_OF[d.subType]]);
}

function columnsOf(d: DeliveryDetails): OrderDeliveryColumns {
  return {
    delivery_method: d.method,
    delivery_sub_type: d.subType,
    recipient_name: d.recipientName,
    recipient_phone: d.recipientPhone,
    recipient_zip: d.recipientZip,
    recipient_address: d.recipientAddress,
    store_id: d.storeId,
    store_name: d.storeName,
    store_address: d.storeAddress,
    store_outside: d.storeOutside,
  };
}

function profileToDetails(p: Record<string, unknown>): DeliveryDetails | null {
  const method = p.delivery_method;
  if (method !== 'home' && method !== 'cvs') return null;
  const subType = typeof p.delivery_sub_type === 'string' && isCvsSubType(p.delivery_sub_type) ? p.delivery_sub_type : null;
  return {
    method,
    subType,
    recipientName: String(p.recipient_name ?? ''),
    recipientPhone: String(p.recipient_phone ?? ''),
    recipientZip: (p.recipient_zip as string | null) ?? null,
    recipientAddress: (p.recipient_address as string | null) ?? null,
    storeId: (p.store_id as string | null) ?? null,
    storeName: (p.store_name as string | null) ?? null,
    storeAddress: (p.store_address as string | null) ?? null,
    storeOutside: (p.store_outside as boolean | null) ?? null,
  };
}

export class DeliveryCheckout {
  constructor(private readonly d: DeliveryCheckoutDeps) {}

  /** Home delivery always; store pickup per chain only when ECPay logistics is configured. */
  options(): DeliveryOption[] {
    const { homeFee, cvsFee } = this.d.shipping;
    const out: DeliveryOption[] = [{ key: 'home', method: 'home', subType: null, fee: homeFee }];
    for (const s of this.d.logistics?.subTypes ?? []) out.push({ key: s, method: 'cvs', subType: s, fee: cvsFee });
    return out;
  }

  option(key: string): DeliveryOption | undefined {
    return this.options().find((o) => o.key === key);
  }

  /** The fee for an order's goods: none at or above FREE_SHIPPING_OVER. */
  feeFor(option: Pick<DeliveryOption, 'fee'>, goods: number): number {
    return goods >= this.d.shipping.freeOver ? 0 : option.fee;
  }

  private async goodsTotal(db: Db | Trx, orderId: number): Promise<number> {
    const [{ n }] = await db('order_lines').where({ order_id: orderId }).sum<{ n: string | null }[]>({ n: 'line_total' });
    return Number(n ?? 0);
  }

  private async optionsWithFees(db: Db | Trx, orderId: number) {
    const goods = await this.goodsTotal(db, orderId);
    return this.options().map((o) => ({ ...o, effectiveFee: this.feeFor(o, goods) }));
  }

  /** Why this (locked) order's delivery cannot change now, or null. */
  private async closedReason(trx: Trx, order: Order): Promise<ClosedReason | null> {
    if (['paid', 'shipped', 'completed', 'refunded', 'paid_no_stock'].includes(order.status)) return 'order-paid';
    if (order.status !== 'pending_payment' || order.hold_expires_at.getTime() <= Date.now()) return 'order-closed';
    const started = await trx('payment_attempts').where({ order_id: order.id }).whereIn('status', ['creating', 'pending', 'paid']).first('id');
    return started ? 'payment-started' : null;
  }

  /** The shopper's last details, if still usable here (a chain no longer offered is not). */
  async lastDetails(db: Db | Trx, userId: string): Promise<DeliveryDetails | null> {
    const row = await db('delivery_profiles').where({ line_user_id: userId }).first();
    const d = row ? profileToDetails(row) : null;
    if (!d) return null;
    if (!this.option(d.subType ?? 'home')) return null;
    if (d.method === 'cvs' && (!d.storeId || !d.storeName)) return null;
    return d;
  }

  /** What the chat offers after 結帳 (or when a payment method was tapped too early). */
  async choices(db: Db | Trx, order: Order): Promise<DeliveryChoices> {
    return { order, options: await this.optionsWithFees(db, order.id), last: await this.lastDetails(db, order.line_user_id) };
  }

  /** A fresh link to the details page for one method the shopper tapped in the chat. */
  async openLink(trx: Trx, args: { userId: string; orderNo: string; key: string }): Promise<LinkResult> {
    const option = this.option(args.key);
    if (!option) return { kind: 'unavailable' };
    const order = await lockOrder(trx, { order_no: args.orderNo });
    if (!order || order.line_user_id !== args.userId) return { kind: 'not-found', orderNo: args.orderNo };
    const closed = await this.closedReason(trx, order);
    if (closed) return { kind: 'closed', reason: closed, order };
    const token = newToken();
    await trx('delivery_links').insert({
      order_id: order.id,
      token_hash: sha256(token),
      map_token: newToken(),
      expires_at: order.hold_expires_at,
      method: option.method,
      sub_type: option.subType,
      csrf_token: crypto.randomBytes(18).toString('base64url'),
    });
    return { kind: 'link', url: `${this.d.publicBaseUrl}/delivery/${token}`, order, option, expiresAt: order.hold_expires_at };
  }

  /** One tap: the shopper's last details for this order, complete at once. */
  async useLast(trx: Trx, after: AfterCommit, args: { userId: string; orderNo: string }): Promise<UseLastResult> {
    const order = await lockOrder(trx, { order_no: args.orderNo });
    if (!order || order.line_user_id !== args.userId) return { kind: 'not-found', orderNo: args.orderNo };
    const closed = await this.closedReason(trx, order);
    if (closed) return { kind: 'closed', reason: closed, order };
    const last = await this.lastDetails(trx, args.userId);
    const check = last ? checkRecipient({ name: last.recipientName, phone: last.recipientPhone, address: last.recipientAddress ?? '' }, { needAddress: last.method === 'home' }) : null;
    if (!last || !check?.ok) return { kind: 'no-profile' };
    const saved = await this.complete(trx, after, order, last, { push: false });
    return { kind: 'ready', order: saved, items: await orderItems(trx, order.id), delivery: last, methods: this.d.paymentMethods() };
  }

  /**
   * Completes an order's delivery (the page's form, the map's reply, the one-tap reuse): the
   * details on the order, delivery_ready_at, the fee as the `shipping` adjustment (total
   * recomputed), the shopper's profile, and, when `push`, the summary with the payment methods
   * (once per distinct details: a form posted twice pushes once). The order must be locked and
   * editable (closedReason null).
   */
  async complete(trx: Trx, after: AfterCommit, order: Order, details: DeliveryDetails, opts: { push: boolean; storeChosen?: boolean }): Promise<Order> {
    const option = this.option(details.subType ?? 'home');
    if (!option) throw new Error(`delivery option ${details.subType ?? 'home'} is not offered`);
    const fee = this.feeFor(option, await this.goodsTotal(trx, order.id));
    await trx('orders')
      .where({ id: order.id })
      .update({ ...columnsOf(details), delivery_ready_at: trx.fn.now(), updated_at: trx.fn.now() });
    const adj = await setAdjustment(trx, order.id, {
      kind: 'shipping',
      label: DELIVERY_TEXT.feeLabel(deliveryLabel(details)),
      amount: fee,
      details: { method: details.method, subType: details.subType },
    });
    if (adj.kind !== 'ok') throw new Error(`shipping fee of order ${order.id} not set: ${adj.kind}`);
    await trx('delivery_profiles')
      .insert({ line_user_id: order.line_user_id, ...columnsOf(details), updated_at: trx.fn.now() })
      .onConflict('line_user_id')
      .merge();
    const saved = (await trx('orders').where({ id: order.id }).first<Order>())!;
    if (opts.push) {
      const key = sha256(JSON.stringify([details, fee])).slice(0, 20);
      await this.d.notifier.shopper(trx, after, order.line_user_id, `delivery:${order.id}:ready:${key}`, {
        type: 'delivery-ready',
        order: saved,
        items: await orderItems(trx, order.id),
        delivery: details,
        methods: this.d.paymentMethods(),
        storeChosen: opts.storeChosen ?? false,
      });
    }
    return saved;
  }

  // ---- The page ------------------------------------------------------------------------------

  private async findLink(db: Db | Trx, ref: string): Promise<LinkRow | undefined> {
    if (!REF.test(ref)) return undefined;
    // The page's own token (hashed), or the map token the store map sends the browser back with.
    // Checkout links only: a store-change link (domain/store-change.ts) never edits checkout's details.
    return db('delivery_links')
      .where({ purpose: 'checkout' })
      .where((q) => q.where({ token_hash: sha256(ref) }).orWhere({ map_token: ref }))
      .first<LinkRow>();
  }

  private linkExpired(link: LinkRow): boolean {
    return link.expires_at.getTime() <= Date.now();
  }

  /** The page as it stands (GET), or why it cannot be used. */
  async page(ref: string): Promise<PageState> {
    return this.d.uow.run(async (trx) => {
      const link = await this.findLink(trx, ref);
      if (!link) return { kind: 'closed', reason: 'not-found' } as PageState;
      return this.stateOf(trx, ref, link, null, null);
    });
  }

  private async stateOf(trx: Trx, ref: string, link: LinkRow, posted: DeliveryForm | null, lockedOrder: Order | null): Promise<PageState> {
    const order = lockedOrder ?? (await trx('orders').where({ id: link.order_id }).first<Order & OrderDeliveryColumns>())!;
    const o = order as Order & OrderDeliveryColumns;
    const closed = await this.closedReason(trx, order);
    if (closed) return { kind: 'closed', reason: closed, order, delivery: orderDelivery(o) };
    if (this.linkExpired(link)) return { kind: 'closed', reason: 'link-expired', order };
    const profile = await this.lastDetails(trx, order.line_user_id);
    // The method shown: what was typed before the map, else the order's complete details, else the
    // method tapped in the chat for this link, else whatever the order has so far.
    const orderKey = o.delivery_method ? (o.delivery_sub_type ?? o.delivery_method) : null;
    const linkKey = link.sub_type ?? link.method;
    const values: DeliveryForm = posted ?? {
      key: link.draft?.key ?? (o.delivery_ready_at ? orderKey : (linkKey ?? orderKey)) ?? '',
      name: link.draft?.name ?? o.recipient_name ?? profile?.recipientName ?? '',
      phone: link.draft?.phone ?? o.recipient_phone ?? profile?.recipientPhone ?? '',
      zip: link.draft?.zip ?? o.recipient_zip ?? profile?.recipientZip ?? '',
      address: link.draft?.address ?? o.recipient_address ?? profile?.recipientAddress ?? '',
    };
    if (!this.option(values.key)) values.key = 'home';
    const store =
      o.delivery_method === 'cvs' && o.delivery_sub_type && isCvsSubType(o.delivery_sub_type) && o.store_id
        ? { subType: o.delivery_sub_type, id: o.store_id, name: o.store_name ?? '', address: o.store_address ?? '' }
        : null;
    return {
      kind: 'editable',
      ref,
      csrf: link.csrf_token ?? '',
      order,
      items: await orderItems(trx, order.id),
      options: await this.optionsWithFees(trx, order.id),
      values,
      store,
      ready: Boolean(o.delivery_ready_at),
    };
  }

  /** Checks a POST's synchronizer token against the link's (constant time). */
  private csrfOk(link: LinkRow, sent: string): boolean {
    if (!link.csrf_token) return false;
    const a = Buffer.from(sent);
    const b = Buffer.from(link.csrf_token);
    return a.length === b.length && crypto.timingSafeEqual(a, b);
  }

  /** Whether a POST carries the link's CSRF token (checked before anything else). */
  async csrfValid(ref: string, sent: string): Promise<boolean> {
    const link = await this.findLink(this.d.uow.db, ref);
    return Boolean(link && this.csrfOk(link, sent));
  }

  /**
   * The form posted: validated as a whole (ECPay's rules, §6.1); any error re-shows the form and
   * writes nothing. Complete details are saved in one transaction with the fee and the profile,
   * and the shopper is pushed the summary with the payment methods.
   */
  async submit(ref: string, form: DeliveryForm): Promise<SubmitResult> {
    return this.d.uow.run(async (trx, after): Promise<SubmitResult> => {
      const link = await this.findLink(trx, ref);
      if (!link) return { kind: 'closed', reason: 'not-found' };
      const order = (await lockOrder(trx, { id: link.order_id }))!;
      const closed = (await this.closedReason(trx, order)) ?? (this.linkExpired(link) ? 'link-expired' : null);
      if (closed) return { kind: 'closed', reason: closed };
      const o = order as Order & OrderDeliveryColumns;
      const option = this.option(form.key);
      const errors: FormErrors = {};
      if (!option) errors.key = DELIVERY_ERRORS.methodRequired;
      const check = checkRecipient({ name: form.name, phone: form.phone, address: form.address }, { needAddress: option?.method === 'home' });
      if (!check.ok) Object.assign(errors, check.errors);
      const zip = form.zip.normalize('NFKC').trim();
      if (option?.method === 'home' && zip !== '' && !/^\d{3}(\d{2,3})?$/.test(zip)) errors.address = errors.address ?? DELIVERY_ERRORS.zipFormat;
      const storeOk = option?.method === 'cvs' && o.delivery_method === 'cvs' && o.delivery_sub_type === option.subType && Boolean(o.store_id);
      if (option?.method === 'cvs' && !storeOk) errors.store = DELIVERY_ERRORS.storeRequired;
      if (!option || !check.ok || Object.keys(errors).length > 0) {
        return { kind: 'invalid', errors, state: await this.stateOf(trx, ref, link, form, order) };
      }
      const r = check.value;
      const details: DeliveryDetails =
        option.method === 'home'
          ? {
              method: 'home', subType: null, recipientName: r.name, recipientPhone: r.phone, recipientZip: zip || null, recipientAddress: r.address ?? null,
              storeId: null, storeName: null, storeAddress: null, storeOutside: null,
            }
          : {
              method: 'cvs', subType: option.subType, recipientName: r.name, recipientPhone: r.phone, recipientZip: null, recipientAddress: null,
              storeId: o.store_id!, storeName: o.store_name ?? '', storeAddress: o.store_address ?? '', storeOutside: o.store_outside ?? false,
            };
      const saved = await this.complete(trx, after, order, details, { push: true });
      await trx('delivery_links').where({ id: link.id }).update({ draft: null });
      return { kind: 'saved', order: saved, delivery: details };
    });
  }

  /**
   * 選擇門市: keeps what was typed (as the link's draft, not on the order) and returns the page
   * that posts the signed Express/map form, top-level, with the link's map token as ExtraData.
   */
  async openMap(ref: string, form: DeliveryForm): Promise<MapOpenResult> {
    const logistics = this.d.logistics;
    return this.d.uow.run(async (trx): Promise<MapOpenResult> => {
      const link = await this.findLink(trx, ref);
      if (!link) return { kind: 'closed', reason: 'not-found' };
      const order = (await lockOrder(trx, { id: link.order_id }))!;
      const closed = (await this.closedReason(trx, order)) ?? (this.linkExpired(link) ? 'link-expired' : null);
      if (closed) return { kind: 'closed', reason: closed };
      const option = this.option(form.key);
      if (!logistics || !option || option.method !== 'cvs' || !option.subType) {
        return { kind: 'invalid', errors: { key: DELIVERY_ERRORS.chainRequired }, state: await this.stateOf(trx, ref, link, form, order) };
      }
      const draft: DeliveryDraft = { key: form.key, name: form.name.slice(0, 50), phone: form.phone.slice(0, 30), zip: form.zip.slice(0, 10), address: form.address.slice(0, 200) };
      await trx('delivery_links').where({ id: link.id }).update({ draft: JSON.stringify(draft) });
      const mapForm = logistics.mapForm({
        subType: option.subType,
        token: link.map_token!,
        serverReplyUrl: `${this.d.publicBaseUrl}/logistics/ecpay/map-reply`,
        cashOnPickup: false,
        device: 'mobile',
      });
      return { kind: 'map', html: logistics.renderFormPage(mapForm, 'map') };
    });
  }

  /**
   * The store map's reply (an unsigned browser POST, §5.3): checked field by field, matched to the
   * link by its map token, stored on the order. With a recipient at hand (typed before the map,
   * or the order's own) the delivery is complete and the summary is pushed; otherwise the shopper
   * is pushed the chosen store and finishes on the page. A reply posted twice pushes once.
   */
  async mapReply(body: unknown): Promise<MapReplyOutcome> {
    const logistics = this.d.logistics;
    if (!logistics) return { kind: 'rejected', reason: 'logistics not configured' };
    const parsed = logistics.parseMapReply(body);
    if (!parsed.ok) return { kind: 'rejected', reason: `${parsed.reason}: ${parsed.detail}` };
    const s = parsed.store;
    return this.d.uow.run(async (trx, after): Promise<MapReplyOutcome> => {
      const link = await trx('delivery_links').where({ map_token: s.token, purpose: 'checkout' }).first<LinkRow>();
      if (!link) return { kind: 'rejected', reason: 'unknown map token' };
      // The chain whose map was opened from the page (§5.3: check the sub-type is the one requested).
      if (link.draft?.key && isCvsSubType(link.draft.key) && link.draft.key !== s.subType) return { kind: 'rejected', reason: 'LogisticsSubType is not the one requested' };
      const ref = link.map_token!;
      const order = (await lockOrder(trx, { id: link.order_id }))!;
      const closed = (await this.closedReason(trx, order)) ?? (this.linkExpired(link) ? 'link-expired' : null);
      if (closed) return { kind: 'closed', reason: closed, ref };
      const o = order as Order & OrderDeliveryColumns;
      const draft = link.draft?.key === s.subType ? link.draft : null;
      const candidates = [
        draft ? { name: draft.name ?? '', phone: draft.phone ?? '' } : null,
        o.recipient_name && o.recipient_phone ? { name: o.recipient_name, phone: o.recipient_phone } : null,
      ];
      let recipient: { name: string; phone: string } | null = null;
      for (const c of candidates) {
        const check = c ? checkRecipient(c, { needAddress: false }) : null;
        if (check?.ok) {
          recipient = { name: check.value.name, phone: check.value.phone };
          break;
        }
      }
      const store = { store_id: s.storeId, store_name: s.storeName, store_address: s.storeAddress, store_outside: s.outside };
      if (recipient) {
        const details: DeliveryDetails = {
          method: 'cvs', subType: s.subType, recipientName: recipient.name, recipientPhone: recipient.phone, recipientZip: null, recipientAddress: null,
          storeId: s.storeId, storeName: s.storeName, storeAddress: s.storeAddress, storeOutside: s.outside,
        };
        await this.complete(trx, after, order, details, { push: true, storeChosen: true });
        await trx('delivery_links').where({ id: link.id }).update({ draft: null });
        return { kind: 'stored', ref, complete: true };
      }
      // No recipient yet: the store is the order's, the details are not complete.
      await trx('orders')
        .where({ id: order.id })
        .update({ delivery_method: 'cvs', delivery_sub_type: s.subType, ...store, delivery_ready_at: null, updated_at: trx.fn.now() });
      await this.d.notifier.shopper(trx, after, order.line_user_id, `delivery:${order.id}:store:${s.merchantTradeNo}:${s.storeId}`, {
        type: 'delivery-store',
        orderNo: order.order_no,
        chain: CVS_CHAIN_NAME[CHAIN_OF[s.subType]],
        storeName: s.storeName,
        storeAddress: s.storeAddress,
      });
      return { kind: 'stored', ref, complete: false };
    });
  }
}

/** The latest shipment of an order (read-only here; the shipments half writes them). */
export async function latestShipment(db: Db | Trx, orderId: number): Promise<ShipmentView | null> {
  // A refused creation is the owner's business (出貨 makes a new one): shoppers see the live shipment.
  const row = await db('shipments').where({ order_id: orderId }).whereNot({ status: 'failed' }).orderBy('id', 'desc').first('provider', 'shipment_no', 'validation_no', 'status');
  return (row as ShipmentView | undefined) ?? null;
}
