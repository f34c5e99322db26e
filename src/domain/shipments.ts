import type { Db, Trx } from '../data/db';
import { storableJson, storableString } from '../data/jsonb';
import type { AfterCommit, UnitOfWork } from '../data/unit-of-work';
import {
  dropOffCode,
  goodsNameFor,
  LOGISTICS_ACK,
  logisticsNack,
  LogisticsRejectedError,
  mapStatus,
  newLogisticsTradeNo,
  type CreateShipmentInput,
  type LogisticsPort,
  type ShipmentInfo,
  type ShipmentState,
} from '../gateways/ecpay-logistics';
import { isCvsSubType, type CvsSubType } from '../gateways/ecpay-logistics/sub-types';
import { GatewayError } from '../gateways/payment-gateway';
import type { Queues } from '../jobs/queues';
import type { Logger } from '../logger';
import { audit, type Actor } from './audit';
import { insertStoreChangeLink } from './delivery-links';
import type { Notifier, ShipmentFailure } from './notices';
import { lockOrder, Order, orderLines, OrderStatus, transition, TRANSITIONS } from './orders';

/**
 * Shipping an order's parcel (issue 13, specs/ecpay-logistics.md §6–§10).
 *
 * Store pickup at ECPay, C2C:
 * - 出貨 (chat or back office) inserts a `shipments` row `creating` with a fresh MerchantTradeNo in
 *   the owner's transaction; the partial unique index (one non-failed shipment per order) and the
 *   order row lock make a second 出貨 find that row instead. The `create-shipment` job calls
 *   Express/Create after commit, never inside a transaction.
 * - Express/Create is not idempotent: a timeout or an unreadable answer marks the shipment
 *   `unknown`, and we ask QueryLogisticsTradeInfo by MerchantTradeNo before any new try; only when
 *   ECPay knows no such trade do we try again, under a new MerchantTradeNo. A refusal marks it
 *   `failed` (the owner is told why, and may ship again: a failed row does not count as live).
 * - Status notifications, the Create answer and Query answers all go through applyStatus(): one
 *   row in logistics_notifications per (shipment, code, date) — a replay is a `duplicate` and
 *   changes nothing — and the shipment and the order only move forward.
 *
 * Shipment states: creating | unknown → created → shipped → arrived_at_store → picked_up | returned;
 * failed (refused), cancelled. Order: paid → shipped (ECPay accepted the shipment) → at_store →
 * completed (picked up) | returned.
 *
 * Home delivery: the owner's carrier and tracking number, kept as a shipments row (provider = the
 * carrier) with status `shipped`.
 */

export interface ShipmentRow {
  id: number;
  order_id: number;
  provider: string;
  delivery_sub_type: string | null;
  merchant_trade_no: string | null;
  logistics_id: string | null;
  shipment_no: string | null;
  validation_no: string | null;
  status: ShipmentStatus;
  last_rtn_code: string | null;
  last_rtn_msg: string | null;
  pickup_deadline: Date | null;
  status_at: Date | null;
  last_checked_at: Date | null;
  created_at: Date;
  updated_at: Date;
  /** The pickup store last closed (a store_closed event for the order's store). */
  store_closed_at?: Date | null;
  /** ECPay accepted a new pickup store (UpdateStoreInfo) for the last closure. */
  store_fixed_at?: Date | null;
  /** An UpdateStoreInfo call is running (one at a time per parcel). */
  store_change_claimed_at?: Date | null;
}

export type ShipmentStatus =
  | 'creating'
  | 'unknown'
  | 'created'
  | 'shipped'
  | 'arrived_at_store'
  | 'picked_up'
  | 'returned'
  | 'failed'
  | 'cancelled';

/** The delivery columns of an order (migration 20261205000100). */
export interface OrderDelivery {
  delivery_method: 'home' | 'cvs' | null;
  delivery_sub_type: string | null;
  recipient_name: string | null;
  recipient_phone: string | null;
  recipient_zip: string | null;
  recipient_address: string | null;
  store_id: string | null;
  store_name: string | null;
  store_address: string | null;
  store_outside: boolean | null;
}

export type DeliveryOrder = Order & OrderDelivery;

/** How far along a shipment is: it only ever moves to a higher rank. */
const RANK: Record<ShipmentStatus, number> = {
  failed: -1,
  creating: 0,
  unknown: 0,
  created: 1,
  shipped: 2,
  arrived_at_store: 3,
  picked_up: 4,
  returned: 4,
  cancelled: 4,
};

/** Shipment statuses that still wait for news from ECPay. */
export const OPEN_STATUSES: readonly ShipmentStatus[] = ['created', 'shipped', 'arrived_at_store'];

/** Days the parcel waits at the pickup store (7 for every chain's C2C service) [L]. */
export const PICKUP_DAYS = 7;

/** Days from creation to drop the parcel off (§6.3; 7-ELEVEN C2C read as D+5 to be safe). */
const DROP_OFF_DAYS: Record<string, number> = { UNIMARTC2C: 5, FAMIC2C: 6, HILIFEC2C: 7, OKMARTC2C: 7, UNIMART: 5, UNIMARTFREEZE: 5, FAMI: 6, HILIFE: 7 };

const DAY_MS = 86_400_000;
/** 訂單超過驗收期限（賣家未出貨）: the parcel was never dropped off in time; a new shipment is needed (§6.3). */
export const DROP_OFF_EXPIRED_CODES: ReadonlySet<string> = new Set(['7013', '2036']);
/** A creation run holds its shipment this long (Express/Create and Query each time out well before). */
const CREATION_CLAIM_S = 60;
/** A status event as every source reports it. */
export interface StatusEvent {
  source: 'notify' | 'create' | 'query';
  logisticsId: string;
  rtnCode: string;
  rtnMsg: string;
  state: ShipmentState;
  /** Raw UpdateStatusDate (the idempotency key with the shipment and the code); Query has none. */
  updateStatusDate: string;
  at: Date | null;
  cvsPaymentNo: string;
  cvsValidationNo: string;
  payload: Record<string, string>;
}

export type ShipStart =
  /** A new store-pickup shipment; its creation at ECPay runs after commit. */
  | { kind: 'creating'; shipment: ShipmentRow }
  /** The order already has a live shipment (a second 出貨). */
  | { kind: 'existing'; shipment: ShipmentRow }
  | { kind: 'no-logistics' }
  | { kind: 'no-store' };

export type CreationOutcome = 'created' | 'failed' | 'unknown' | 'skipped';

export type StoreChangeResult =
  | { kind: 'updated'; orderNo: string; storeName: string; storeAddress: string | null }
  | { kind: 'not-found'; orderNo: string }
  /** No parcel waiting for a new store (or a chain without UpdateStoreInfo, or the store was fixed already). */
  | { kind: 'not-possible'; orderNo: string }
  /** Another UpdateStoreInfo call for this parcel is running (owner and shopper at once, a double reply). */
  | { kind: 'busy'; orderNo: string }
  /** ECPay answered with a refusal: nothing changed. */
  | { kind: 'refused'; orderNo: string; message: string }
  /** ECPay did not answer (timeout, 5xx): nothing changed here; trying again is safe (§8: idempotent in effect). */
  | { kind: 'unavailable'; orderNo: string };

/** The C2C chains with Express/UpdateStoreInfo (§8). */
const STORE_CHANGE_CHAINS: ReadonlySet<string> = new Set(['UNIMARTC2C', 'FAMIC2C', 'OKMARTC2C']);

/** A new store was accepted for the parcel's last closure. */
export function storeFixed(s: Pick<ShipmentRow, 'store_closed_at' | 'store_fixed_at'>): boolean {
  if (!s.store_fixed_at) return false;
  return !s.store_closed_at || new Date(s.store_fixed_at).getTime() >= new Date(s.store_closed_at).getTime();
}

/** The parcel has a label to print: created at ECPay and not handed over yet. */
export function canPrintLabel(s: ShipmentRow): boolean {
  return s.provider === 'ecpay' && !!s.logistics_id && !!s.shipment_no && s.status === 'created';
}

/** ECPay can take a new pickup store for this parcel: its store closed, and its chain has UpdateStoreInfo (§8). */
export function canChangeStore(s: ShipmentRow): boolean {
  const sub = s.delivery_sub_type ?? '';
  return (
    s.provider === 'ecpay' &&
    !!s.logistics_id &&
    !!s.shipment_no &&
    (s.status === 'created' || s.status === 'shipped') &&
    STORE_CHANGE_CHAINS.has(sub) &&
    // The last status says so, or a 7-ELEVEN store-change notice (no status code of its own) opened a closure.
    (mapStatus(sub, s.last_rtn_code ?? '').state === 'store_closed' || (!!s.store_closed_at && mapStatus(sub, s.last_rtn_code ?? '').state !== 'store_changed')) &&
    // Fixed already: ECPay's store_changed status (2105) is on its way and will replace the code.
    !storeFixed(s)
  );
}

export interface ShipmentsDeps {
  db: Db;
  uow: UnitOfWork;
  notifier: Notifier;
  queues: Queues;
  log: Logger;
  logistics: LogisticsPort | null;
  /** Our status endpoint, ECPay's ServerReplyURL. */
  notifyUrl: string;
  /** PUBLIC_BASE_URL: the shopper's store-change link is built on it. */
  publicBaseUrl: string;
  /** LOGISTICS_RECONCILE_AFTER_MINUTES. */
  reconcileAfterMinutes: number;
  now?: () => Date;
}

/** One shipment's detail for the back office. */
export interface ShipmentDetail {
  shipment: ShipmentRow;
  dropOffCode: string | null;
  /** A label can be printed (GET /admin/orders/:orderNo/label). */
  printable: boolean;
  history: Array<{ id: number; rtn_code: string | null; rtn_msg: string | null; update_status_date: string | null; outcome: string; received_at: Date }>;
}

export interface DeliveryDetail {
  method: 'home' | 'cvs' | null;
  subType: string | null;
  recipientName: string | null;
  /** Masked: 0912***678. */
  recipientPhone: string | null;
  address: string | null;
  storeId: string | null;
  storeName: string | null;
  storeAddress: string | null;
  shipments: ShipmentDetail[];
  /** The back office may start a store-pickup shipment now. */
  canShipCvs: boolean;
  /** The parcel's pickup store closed: the back office may record a new one. */
  canChangeStore: boolean;
  /** The shopper was pushed a store-change link for this closure, usable until then (null: not asked). */
  shopperAskedUntil: Date | null;
}

/** 0912345678 → 0912***678. */
export function maskPhone(phone: string | null): string | null {
  if (!phone) return null;
  return phone.length >= 7 ? `${phone.slice(0, 4)}***${phone.slice(-3)}` : '***';
}

export function shipmentDropOffCode(s: Pick<ShipmentRow, 'delivery_sub_type' | 'shipment_no' | 'validation_no'>): string | null {
  if (!s.shipment_no || !isCvsSubType(s.delivery_sub_type ?? '')) return s.shipment_no;
  return dropOffCode(s.delivery_sub_type as CvsSubType, s.shipment_no, s.validation_no ?? '');
}

export class Shipments {
  private readonly now: () => Date;

  constructor(private readonly d: ShipmentsDeps) {
    this.now = d.now ?? (() => new Date());
  }

  get logisticsConfigured(): boolean {
    return this.d.logistics !== null;
  }

  // -------------------------------------------------------------------------------------------
  // Starting a shipment (in the owner's transaction, the order row locked by the caller)

  /** The order's live shipment (anything but a refused attempt), if any. */
  live(trx: Db | Trx, orderId: number): Promise<ShipmentRow | undefined> {
    return trx('shipments').where({ order_id: orderId }).whereNot('status', 'failed').orderBy('id', 'desc').first<ShipmentRow>();
  }

  /**
   * Starts a store-pickup shipment of a paid order whose row the caller has locked: one row
   * `creating`, and its creation job after commit. A second call finds that row.
   */
  async startCvs(trx: Trx, after: AfterCommit, order: DeliveryOrder): Promise<ShipStart> {
    const existing = await this.live(trx, order.id);
    if (existing) return { kind: 'existing', shipment: existing };
    if (!this.d.logistics) return { kind: 'no-logistics' };
    if (!order.store_id || !order.delivery_sub_type || !isCvsSubType(order.delivery_sub_type)) return { kind: 'no-store' };
    const inserted = await trx.raw(
      `INSERT INTO shipments (order_id, provider, delivery_sub_type, merchant_trade_no, status)
       VALUES (?, 'ecpay', ?, ?, 'creating')
       ON CONFLICT (order_id) WHERE status <> 'failed' DO NOTHING
       RETURNING *`,
      [order.id, order.delivery_sub_type, newLogisticsTradeNo('LS')],
    );
    const row = inserted.rows[0] as ShipmentRow | undefined;
    if (!row) return { kind: 'existing', shipment: (await this.live(trx, order.id))! };
    after.tasks.push(() => this.d.queues.enqueueShipmentCreation(row.id));
    return { kind: 'creating', shipment: row };
  }

  /** Home delivery (or an order from before delivery existed): the owner's carrier and tracking number. */
  async recordHome(trx: Trx, order: Order, carrier: string | null, tracking: string | null): Promise<void> {
    await trx.raw(
      `INSERT INTO shipments (order_id, provider, shipment_no, status, status_at)
       VALUES (?, ?, ?, 'shipped', now())
       ON CONFLICT (order_id) WHERE status <> 'failed' DO NOTHING`,
      [order.id, carrier ?? 'home', tracking],
    );
  }

  // -------------------------------------------------------------------------------------------
  // Creating it at ECPay (job, and the reconciliation sweep)

  /**
   * Creates the shipment at ECPay, or finds out what became of an earlier try. Runs outside any
   * transaction; one run at a time per shipment (a short claim on last_checked_at).
   */
  async runCreation(shipmentId: number): Promise<CreationOutcome> {
    const logistics = this.d.logistics;
    if (!logistics) return 'skipped';
    const db = this.d.db;
    const claimed = await db('shipments')
      .where({ id: shipmentId })
      .whereIn('status', ['creating', 'unknown'])
      .where((q) => q.whereNull('last_checked_at').orWhereRaw(`last_checked_at < now() - interval '${CREATION_CLAIM_S} seconds'`))
      .update({ last_checked_at: db.fn.now(), updated_at: db.fn.now() })
      .returning<ShipmentRow[]>('*');
    let s = claimed[0];
    if (!s) return 'skipped';
    const log = this.d.log.child({ shipmentId, orderId: s.order_id });
    for (let round = 0; round < 3; round++) {
      if (s.status === 'unknown') {
        // Never a second Express/Create before ECPay says the first one does not exist (§6.2).
        let info: ShipmentInfo;
        try {
          info = await logistics.queryShipment({ merchantTradeNo: s.merchant_trade_no! });
        } catch (err) {
          if (err instanceof LogisticsRejectedError && err.reason === 'NOT_FOUND') {
            log.info({ merchantTradeNo: s.merchant_trade_no }, 'shipment creation did not reach ECPay; trying again with a new trade number');
            const renewed = await db('shipments')
              .where({ id: s.id, status: 'unknown' })
              .update({ status: 'creating', merchant_trade_no: newLogisticsTradeNo('LS'), updated_at: db.fn.now() })
              .returning<ShipmentRow[]>('*');
            if (!renewed[0]) return 'skipped';
            s = renewed[0];
            continue;
          }
          log.warn({ err: errText(err) }, 'shipment query failed; the job asks again soon, then the reconciliation sweep');
          await this.releaseClaim(s.id);
          await this.tellUnknown(s);
          return 'unknown';
        }
        await this.applyQueryInfo(s.id, info);
        return 'created';
      }

      let input: CreateShipmentInput;
      try {
        input = await this.createInput(s);
      } catch (err) {
        await this.markFailed(s, 'recipient', errText(err));
        return 'failed';
      }
      try {
        const created = await logistics.createShipment(input);
        await this.applyEvent(s.id, {
          source: 'create',
          logisticsId: created.allPayLogisticsId,
          rtnCode: String(created.rtnCode),
          rtnMsg: created.rtnMsg,
          state: created.status.state === 'unknown' ? 'created' : created.status.state,
          updateStatusDate: created.fields.UpdateStatusDate ?? '',
          at: created.updatedAt,
          cvsPaymentNo: created.cvsPaymentNo,
          cvsValidationNo: created.cvsValidationNo,
          payload: created.fields,
        });
        return 'created';
      } catch (err) {
        if (err instanceof LogisticsRejectedError && err.reason !== 'DUPLICATE_TRADE_NO') {
          await this.markFailed(s, err.reason === 'STORE' ? 'store' : err.reason === 'BAD_MAC' ? 'mac' : 'other', err.rtnMsg);
          return 'failed';
        }
        if (err instanceof RangeError) {
          await this.markFailed(s, 'recipient', err.message);
          return 'failed';
        }
        // No answer, a late or unreadable one, or "trade number used": ECPay may have the shipment.
        log.warn({ err: errText(err), code: err instanceof GatewayError ? err.code : undefined }, 'shipment creation outcome unknown; asking ECPay');
        const marked = await db('shipments').where({ id: s.id, status: 'creating' }).update({ status: 'unknown', updated_at: db.fn.now() }).returning<ShipmentRow[]>('*');
        if (!marked[0]) return 'skipped'; // a notification got there first
        s = marked[0];
      }
    }
    await this.releaseClaim(s.id);
    await this.tellUnknown(s);
    return 'unknown';
  }

  /** This run is over: the next one (the job's retry, or the sweep) may ask ECPay at once. */
  private async releaseClaim(shipmentId: number): Promise<void> {
    await this.d.db('shipments').where({ id: shipmentId }).update({ last_checked_at: null });
  }

  private async createInput(s: ShipmentRow): Promise<CreateShipmentInput> {
    const order = await this.d.db('orders').where({ id: s.order_id }).first<DeliveryOrder>();
    if (!order) throw new RangeError('order not found');
    const lines = await orderLines(this.d.db, order.id);
    return {
      merchantTradeNo: s.merchant_trade_no!,
      merchantTradeDate: new Date(order.created_at),
      subType: s.delivery_sub_type as CvsSubType,
      goodsAmount: Math.min(20000, Math.max(1, order.total)),
      // Prepaid: every order is paid before it ships (§11 item 2: said explicitly).
      cashOnPickup: false,
      goodsName: goodsNameFor(lines.map((l) => l.name)),
      receiverName: order.recipient_name ?? '',
      receiverCellPhone: order.recipient_phone ?? '',
      receiverStoreId: order.store_id ?? '',
      serverReplyUrl: this.d.notifyUrl,
    };
  }

  private async markFailed(s: ShipmentRow, reason: ShipmentFailure, message: string): Promise<void> {
    await this.d.uow.run(async (trx, after) => {
      const order = await lockOrder(trx, { id: s.order_id });
      const n = await trx('shipments')
        .where({ id: s.id })
        .whereIn('status', ['creating', 'unknown'])
        .update({ status: 'failed', last_rtn_msg: message.slice(0, 500), updated_at: trx.fn.now() });
      if (n === 1 && order) {
        await this.d.notifier.owners(trx, after, `shipment:${s.id}:failed`, { type: 'shipment-failed', orderNo: order.order_no, reason, message: message.slice(0, 200) });
      }
    });
  }

  private async tellUnknown(s: ShipmentRow): Promise<void> {
    await this.d.uow.run(async (trx, after) => {
      const order = await trx('orders').where({ id: s.order_id }).first('order_no');
      if (order) await this.d.notifier.owners(trx, after, `shipment:${s.id}:unknown`, { type: 'shipment-unknown', orderNo: order.order_no });
    });
  }

  // -------------------------------------------------------------------------------------------
  // Status notifications (§7)

  /**
   * A status notification as express parsed it: verified (MAC, our merchant, a shipment of ours),
   * recorded once, applied. The answer to send: `1|OK` once recorded (also for a replay), a
   * `0|…` refusal with HTTP 400 for a tampered or foreign one (recorded as rejected, nothing else changes).
   */
  async receiveNotification(body: unknown): Promise<{ status: number; text: string }> {
    const logistics = this.d.logistics;
    const raw = stringFieldsOf(body);
    if (!logistics) return { status: 404, text: logisticsNack('logistics not configured') };
    const v = logistics.verifyNotification(body);
    if (!v.ok) {
      await this.recordRejected(raw, v.reason);
      this.d.log.warn({ reason: v.reason, allPayLogisticsId: raw.AllPayLogisticsID, merchantTradeNo: raw.MerchantTradeNo }, 'logistics notification rejected');
      return { status: 400, text: logisticsNack(v.reason) };
    }
    const n = v.notification;
    const db = this.d.db;
    let s = await db('shipments').where({ provider: 'ecpay', logistics_id: n.allPayLogisticsId }).first<ShipmentRow>();
    if (!s && n.kind === 'status') {
      // The creation status can arrive before Express/Create's own answer is stored (§6.2).
      s = await db('shipments')
        .where({ provider: 'ecpay', merchant_trade_no: n.merchantTradeNo })
        .where((q) => q.whereNull('logistics_id').orWhere('logistics_id', n.allPayLogisticsId))
        .first<ShipmentRow>();
    }
    if (!s) {
      await this.recordRejected(raw, 'UNKNOWN_SHIPMENT');
      this.d.log.warn({ allPayLogisticsId: n.allPayLogisticsId }, 'logistics notification for a shipment we do not have');
      return { status: 400, text: logisticsNack('UNKNOWN_SHIPMENT') };
    }
    const event: StatusEvent =
      n.kind === 'status'
        ? {
            source: 'notify',
            logisticsId: n.allPayLogisticsId,
            rtnCode: String(n.rtnCode),
            rtnMsg: n.rtnMsg,
            state: n.status.state,
            updateStatusDate: n.updateStatusDate,
            at: n.updatedAt,
            cvsPaymentNo: n.cvsPaymentNo,
            cvsValidationNo: n.cvsValidationNo,
            payload: n.fields,
          }
        : {
            // 7-ELEVEN C2C store-change notice (§7.5): no code or date of its own.
            source: 'notify',
            logisticsId: n.allPayLogisticsId,
            rtnCode: `store-${n.store}-${n.fields.Status ?? ''}`,
            rtnMsg: n.change,
            state: n.status.state,
            updateStatusDate: n.storeId,
            at: null,
            cvsPaymentNo: '',
            cvsValidationNo: '',
            payload: n.fields,
          };
    await this.applyEvent(s.id, event);
    return { status: 200, text: LOGISTICS_ACK };
  }

  private async recordRejected(raw: Record<string, string>, reason: string): Promise<void> {
    await this.d.db('logistics_notifications').insert({
      shipment_id: null,
      logistics_id: (raw.AllPayLogisticsID ?? '').slice(0, 40) || null,
      merchant_trade_no: (raw.MerchantTradeNo ?? '').slice(0, 40) || null,
      rtn_code: (raw.RtnCode ?? '').slice(0, 20) || null,
      rtn_msg: (raw.RtnMsg ?? '').slice(0, 200) || null,
      update_status_date: (raw.UpdateStatusDate ?? '').slice(0, 40) || null,
      payload: JSON.stringify(raw),
      outcome: 'rejected',
      reason,
    });
  }

  /**
   * Records one status event and moves the shipment and its order forward, in one transaction
   * (order row, then shipment row). Returns false for a replay (nothing changes).
   */
  async applyEvent(shipmentId: number, e: StatusEvent): Promise<boolean> {
    return this.d.uow.run(async (trx, after) => {
      const orderId = (await trx('shipments').where({ id: shipmentId }).first('order_id'))!.order_id as number;
      const order = (await lockOrder(trx, { id: orderId })) as DeliveryOrder;
      const s = await trx('shipments').where({ id: shipmentId }).forUpdate().first<ShipmentRow>();
      if (!s) return false;
      const inserted = await trx.raw(
        `INSERT INTO logistics_notifications (shipment_id, logistics_id, merchant_trade_no, rtn_code, rtn_msg, update_status_date, payload, outcome, reason)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'applied', ?)
         ON CONFLICT (shipment_id, rtn_code, update_status_date) WHERE outcome = 'applied' DO NOTHING
         RETURNING id`,
        [s.id, e.logisticsId, s.merchant_trade_no, e.rtnCode, storableString(e.rtnMsg.slice(0, 200)), storableString(e.updateStatusDate), JSON.stringify(storableJson(e.payload).value), e.source],
      );
      if (inserted.rows.length === 0) {
        await trx('logistics_notifications').insert({
          shipment_id: s.id, logistics_id: e.logisticsId, merchant_trade_no: s.merchant_trade_no, rtn_code: e.rtnCode, rtn_msg: storableString(e.rtnMsg.slice(0, 200)),
          update_status_date: storableString(e.updateStatusDate), payload: JSON.stringify(storableJson(e.payload).value), outcome: 'duplicate', reason: e.source,
        });
        await trx('shipments').where({ id: s.id }).update({ last_checked_at: trx.fn.now() });
        return false;
      }
      const notificationId = inserted.rows[0].id as number;
      await this.apply(trx, after, order, s, e, notificationId);
      return true;
    });
  }

  private async apply(trx: Trx, after: AfterCommit, order: DeliveryOrder, s: ShipmentRow, e: StatusEvent, notificationId: number): Promise<void> {
    const notifier = this.d.notifier;
    const at = e.at ?? this.now();
    const patch: Record<string, unknown> = { last_checked_at: trx.fn.now(), updated_at: trx.fn.now() };
    // A 7-ELEVEN store-change notice has no status code of its own: the last code stays the status's.
    if (/^\d+$/.test(e.rtnCode)) {
      patch.last_rtn_code = e.rtnCode;
      patch.last_rtn_msg = storableString(e.rtnMsg.slice(0, 500));
    }
    if (!s.logistics_id && e.logisticsId) patch.logistics_id = e.logisticsId;
    if (!s.shipment_no && e.cvsPaymentNo) patch.shipment_no = e.cvsPaymentNo;
    if (!s.validation_no && e.cvsValidationNo) patch.validation_no = e.cvsValidationNo;
    let status: ShipmentStatus = s.status;
    const live = e.state !== 'failed' && e.state !== 'cancelled';

    // ECPay has the shipment: the order is shipped, the owner gets the drop-off code.
    if ((status === 'creating' || status === 'unknown') && live) {
      status = 'created';
      const shipmentNo = (patch.shipment_no as string | undefined) ?? s.shipment_no ?? '';
      const validationNo = (patch.validation_no as string | undefined) ?? s.validation_no ?? '';
      const chainLabel = s.delivery_sub_type ?? '';
      // The carrier is the ECPay sub-type: line/carriers.ts knows it (label, tracking page).
      if (order.status === 'shipped' || order.status === 'at_store') {
        // A new shipment after the first one's drop-off window passed: the order keeps its state, takes the new number.
        await trx('orders').where({ id: order.id }).update({ tracking_no: shipmentNo || null, updated_at: trx.fn.now() });
      } else if (await this.moveOrder(trx, order, 'shipped', 'store-pickup shipment created', { shipped_at: trx.fn.now(), tracking_no: shipmentNo || null, carrier: chainLabel })) {
        await notifier.shopper(trx, after, order.line_user_id, `order:${order.id}:shipped`, {
          type: 'shipped',
          orderNo: order.order_no,
          tracking: shipmentNo || null,
          carrier: chainLabel,
        });
      }
      await notifier.owners(trx, after, `shipment:${s.id}:created`, {
        type: 'shipment-created',
        shipment: {
          orderNo: order.order_no,
          subType: chainLabel,
          storeName: order.store_name ?? order.store_id ?? '',
          shipmentNo,
          validationNo,
          dropOffCode: shipmentDropOffCode({ delivery_sub_type: s.delivery_sub_type, shipment_no: shipmentNo, validation_no: validationNo }) ?? '',
          dropOffBy: new Date(new Date(s.created_at).getTime() + (DROP_OFF_DAYS[chainLabel] ?? 5) * DAY_MS),
        },
      });
    }

    const forward = (to: ShipmentStatus) => RANK[to] > RANK[status];
    switch (e.state) {
      case 'shipped':
        if (forward('shipped')) status = 'shipped';
        break;
      case 'arrived_at_store':
        if (forward('arrived_at_store')) {
          status = 'arrived_at_store';
          const deadline = new Date(at.getTime() + PICKUP_DAYS * DAY_MS);
          patch.pickup_deadline = deadline;
          if (await this.moveOrder(trx, order, 'at_store', 'parcel at the pickup store')) {
            await notifier.shopper(trx, after, order.line_user_id, `order:${order.id}:at_store`, {
              type: 'arrived',
              orderNo: order.order_no,
              storeName: order.store_name ?? order.store_id ?? '',
              storeAddress: order.store_address,
              pickupDeadline: deadline,
            });
          }
        }
        break;
      case 'picked_up':
        if (forward('picked_up')) {
          status = 'picked_up';
          if (await this.moveOrder(trx, order, 'completed', 'picked up at the store', { completed_at: trx.fn.now() })) {
            await notifier.shopper(trx, after, order.line_user_id, `order:${order.id}:completed`, { type: 'completed', orderNo: order.order_no });
          }
        }
        break;
      case 'returned':
        if (forward('returned')) {
          status = 'returned';
          if (await this.moveOrder(trx, order, 'returned', 'not collected, returned to the seller')) {
            await notifier.shopper(trx, after, order.line_user_id, `order:${order.id}:returned`, { type: 'returned', orderNo: order.order_no });
            await notifier.owners(trx, after, `shipment:${s.id}:returned`, { type: 'parcel-returned', orderNo: order.order_no, storeName: order.store_name ?? order.store_id ?? '' });
          }
        }
        break;
      case 'store_closed': {
        // A 7-ELEVEN store-change notice names its store: one about a store the parcel no longer
        // goes to (the old one, after a new store was recorded) is not a closure of this parcel's store.
        const notice = !/^\d+$/.test(e.rtnCode);
        if (notice && e.updateStatusDate && order.store_id && e.updateStatusDate !== order.store_id) {
          this.d.log.info({ shipmentId: s.id, storeId: e.updateStatusDate }, 'store-change notice for a store the parcel no longer goes to');
          break;
        }
        const pickup = !e.rtnCode.startsWith('store-return');
        let shopperAsked = false;
        if (pickup) {
          // A new closure (none open, or the last one fixed): the shopper may choose a new store.
          if (!s.store_closed_at || storeFixed(s)) patch.store_closed_at = trx.fn.now();
          shopperAsked = await this.askShopperForStore(trx, after, order, { ...s, logistics_id: s.logistics_id ?? e.logisticsId });
        }
        // Once per store: a 7-ELEVEN closure comes both as a status and as a store-change notice.
        await notifier.owners(trx, after, `shipment:${s.id}:store-closed:${order.store_id ?? ''}`, {
          type: 'store-closed',
          orderNo: order.order_no,
          storeName: order.store_name ?? order.store_id ?? '',
          shopperAsked,
        });
        break;
      }
      case 'cancelled':
        if (forward('cancelled')) status = 'cancelled';
        await notifier.owners(trx, after, `lnotif:${notificationId}`, { type: 'shipment-problem', orderNo: order.order_no, code: e.rtnCode, message: e.rtnMsg.slice(0, 200) });
        break;
      case 'failed':
      case 'unknown':
        if (e.state === 'failed' && DROP_OFF_EXPIRED_CODES.has(e.rtnCode) && status === 'created') {
          // Never handed over in time: this shipment is dead, 出貨 makes a new one (the order stays shipped).
          status = 'failed';
          await notifier.owners(trx, after, `shipment:${s.id}:expired`, { type: 'shipment-failed', orderNo: order.order_no, reason: 'expired', message: e.rtnMsg.slice(0, 200) });
          break;
        }
        // A person must look (lost, damaged, expired drop-off window…), or a code the table does not know yet.
        this.d.log.warn({ shipmentId: s.id, rtnCode: e.rtnCode, rtnMsg: e.rtnMsg }, 'logistics status needs attention');
        await notifier.owners(trx, after, `lnotif:${notificationId}`, { type: 'shipment-problem', orderNo: order.order_no, code: e.rtnCode, message: e.rtnMsg.slice(0, 200) });
        break;
      case 'store_changed':
        // Not while our own UpdateStoreInfo is in flight (its claim is cleared with the fix, in one commit).
        if (s.store_closed_at && !storeFixed(s) && !this.storeChangeRunning(s) && /^\d+$/.test(e.rtnCode)) {
          // ECPay re-routed the parcel but we recorded no new store (an UpdateStoreInfo whose answer
          // was lost, or a change made in ECPay's own back office): a person must check which store.
          this.d.log.warn({ shipmentId: s.id, rtnCode: e.rtnCode }, 'store changed at ECPay without a new store recorded here');
          await this.tellUnrecordedChange(trx, after, order, s, e.rtnCode, e.rtnMsg);
        }
        break;
      case 'created':
        break;
    }
    if (status !== s.status) {
      patch.status = status;
      patch.status_at = at;
    } else if (!s.status_at) {
      patch.status_at = at;
    }
    await trx('shipments').where({ id: s.id }).update(patch);
  }

  /**
   * The shopper's part of a closure (§8 bot flow): a store-change link for this closure, and one
   * push with its button (exactly once per closure: the link's unique (shipment, closed store)).
   * Only where ECPay can take a new store for the parcel: a C2C chain with UpdateStoreInfo, a
   * parcel created and not yet at a store. True when the shopper has (or already had) the link.
   */
  private async askShopperForStore(trx: Trx, after: AfterCommit, order: DeliveryOrder, s: ShipmentRow): Promise<boolean> {
    const sub = s.delivery_sub_type ?? '';
    const closedStoreId = order.store_id;
    if (!this.d.logistics || s.provider !== 'ecpay' || !s.logistics_id || !s.shipment_no || !closedStoreId) return false;
    if (!STORE_CHANGE_CHAINS.has(sub) || (s.status !== 'created' && s.status !== 'shipped')) return false;
    const link = await insertStoreChangeLink(trx, { orderId: order.id, shipmentId: s.id, subType: sub, closedStoreId, now: this.now() });
    if (link) {
      await this.d.notifier.shopper(trx, after, order.line_user_id, `shipment:${s.id}:store-closed:${closedStoreId}`, {
        type: 'store-closed',
        orderNo: order.order_no,
        subType: sub,
        storeName: order.store_name ?? closedStoreId,
        url: `${this.d.publicBaseUrl}/store-change/${link.token}`,
        expiresAt: link.expiresAt,
      });
    }
    return true;
  }

  /** ECPay re-routed the parcel to a store we did not record: once per closure, the owner must check. */
  private async tellUnrecordedChange(trx: Trx, after: AfterCommit, order: DeliveryOrder, s: ShipmentRow, code: string, message: string): Promise<void> {
    const closure = s.store_closed_at ? new Date(s.store_closed_at).getTime() : 0;
    await this.d.notifier.owners(trx, after, `shipment:${s.id}:store-unrecorded:${closure}`, { type: 'shipment-problem', orderNo: order.order_no, code, message: message.slice(0, 200) });
  }

  private storeChangeRunning(s: ShipmentRow): boolean {
    return !!s.store_change_claimed_at && new Date(s.store_change_claimed_at).getTime() > this.now().getTime() - CREATION_CLAIM_S * 1000;
  }

  /** Moves the order when its state machine allows it (a refunded order stays refunded); true when it moved. */
  private async moveOrder(trx: Trx, order: DeliveryOrder, to: OrderStatus, reason: string, patch: Record<string, unknown> = {}): Promise<boolean> {
    if (!TRANSITIONS[order.status].includes(to)) return false;
    await transition(trx, order, to, reason, 'logistics', patch);
    order.status = to;
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Reconciliation (§9)

  /** Applies what Query says about a shipment, through the same path as a notification. */
  async applyQueryInfo(shipmentId: number, info: ShipmentInfo): Promise<boolean> {
    const s = await this.d.db('shipments').where({ id: shipmentId }).first<ShipmentRow>();
    if (!s) return false;
    const pending = s.status === 'creating' || s.status === 'unknown';
    // ECPay answered for this trade: it exists, even should the answer lack a status code.
    const code = info.statusCode === null ? (pending ? '300' : '') : String(info.statusCode);
    const known = code !== '' && code === s.last_rtn_code && !pending;
    if (code === '' || known) {
      await this.d.db('shipments').where({ id: s.id }).update({ last_checked_at: this.d.db.fn.now() });
      return false;
    }
    return this.applyEvent(s.id, {
      source: 'query',
      logisticsId: info.allPayLogisticsId,
      rtnCode: code,
      rtnMsg: info.fields.LogisticsStatusName ?? info.fields.RtnMsg ?? '',
      state: info.status.state === 'unknown' && pending ? 'created' : info.status.state,
      updateStatusDate: 'query',
      at: null,
      cvsPaymentNo: info.cvsPaymentNo,
      cvsValidationNo: info.cvsValidationNo,
      payload: info.fields,
    });
  }

  /**
   * The scheduled sweep: shipments whose creation is unresolved (unknown, or creating with no
   * running job), and open shipments with no news for LOGISTICS_RECONCILE_AFTER_MINUTES, are asked
   * about with QueryLogisticsTradeInfo/V5. Returns how many changed.
   */
  async reconcileSweep(limit = 100): Promise<number> {
    if (!this.d.logistics) return 0;
    const db = this.d.db;
    const rows = await db('shipments')
      .where('provider', 'ecpay')
      .where((q) =>
        q
          .where((q1) =>
            q1.whereIn('status', ['creating', 'unknown']).whereRaw(`coalesce(last_checked_at, created_at) < now() - interval '${CREATION_CLAIM_S} seconds'`),
          )
          .orWhere((q2) =>
            q2
              .whereIn('status', OPEN_STATUSES as ShipmentStatus[])
              .whereRaw(`coalesce(last_checked_at, status_at, updated_at) < now() - (? * interval '1 minute')`, [this.d.reconcileAfterMinutes]),
          ),
      )
      .orderBy('id')
      .limit(limit)
      .select<ShipmentRow[]>('*');
    let changed = 0;
    for (const s of rows) {
      try {
        if (s.status === 'creating' || s.status === 'unknown') {
          if ((await this.runCreation(s.id)) === 'created') changed++;
          continue;
        }
        const info = await this.d.logistics.queryShipment(s.logistics_id ? { allPayLogisticsId: s.logistics_id } : { merchantTradeNo: s.merchant_trade_no! });
        if (await this.applyQueryInfo(s.id, info)) changed++;
      } catch (err) {
        this.d.log.warn({ shipmentId: s.id, err: errText(err) }, 'logistics reconciliation of one shipment failed; next sweep tries again');
        await db('shipments').where({ id: s.id }).update({ last_checked_at: db.fn.now() }).catch(() => undefined);
      }
    }
    return changed;
  }

  // -------------------------------------------------------------------------------------------
  // A new pickup store after store_closed (§8)

  /**
   * Records a new pickup store for a store-pickup parcel whose store closed — the one use case of
   * both entry points: the owner's back-office form and the shopper's store-change link (the map's
   * reply). Express/UpdateStoreInfo (7-ELEVEN, FamilyMart, OK C2C; StoreType 01 with the parcel's
   * AllPayLogisticsID / CVSPaymentNo / CVSValidationNo) runs outside any transaction, one call at a
   * time per parcel (a short claim). Only on `1|OK` does one transaction record the order's new
   * store, the closure as fixed, the store-change links as used, an audit row, and the pushes
   * (shopper: where to pick up now; owner: when the shopper chose it). A refusal or no answer
   * changes nothing. A closure already fixed is `not-possible`, without calling ECPay.
   */
  async changePickupStore(
    actor: Actor,
    args: { orderNo: string; storeId: string; storeName: string; storeAddress?: string | null; storeOutside?: boolean | null },
  ): Promise<StoreChangeResult> {
    const logistics = this.d.logistics;
    const db = this.d.db;
    const order = await db('orders').whereRaw('upper(order_no) = upper(?)', [args.orderNo]).first<DeliveryOrder>();
    if (!order) return { kind: 'not-found', orderNo: args.orderNo };
    const found = await this.live(db, order.id);
    if (!logistics || !found || !canChangeStore(found)) return { kind: 'not-possible', orderNo: order.order_no };
    const claimed = await db('shipments')
      .where({ id: found.id })
      .where((q) => q.whereNull('store_change_claimed_at').orWhereRaw(`store_change_claimed_at < now() - interval '${CREATION_CLAIM_S} seconds'`))
      .update({ store_change_claimed_at: db.fn.now() })
      .returning<ShipmentRow[]>('*');
    const s = claimed[0];
    if (!s) return { kind: 'busy', orderNo: order.order_no };
    const release = () => db('shipments').where({ id: s.id }).update({ store_change_claimed_at: null });
    if (!canChangeStore(s)) {
      await release();
      return { kind: 'not-possible', orderNo: order.order_no };
    }
    try {
      await logistics.updateStore({
        subType: s.delivery_sub_type as CvsSubType,
        allPayLogisticsId: s.logistics_id!,
        cvsPaymentNo: s.shipment_no!,
        cvsValidationNo: s.validation_no ?? undefined,
        store: 'pickup',
        storeId: args.storeId,
      });
    } catch (err) {
      await release();
      if (err instanceof LogisticsRejectedError) return { kind: 'refused', orderNo: order.order_no, message: err.rtnMsg.slice(0, 200) };
      if (err instanceof RangeError) return { kind: 'refused', orderNo: order.order_no, message: err.message };
      this.d.log.warn({ shipmentId: s.id, err: errText(err) }, 'UpdateStoreInfo got no answer; nothing recorded');
      // ECPay may have taken it: should its store_changed status have come while we waited, tell the owner now.
      await this.d.uow.run(async (trx, after) => {
        const locked = (await lockOrder(trx, { id: order.id })) as DeliveryOrder;
        const now = await trx('shipments').where({ id: s.id }).forUpdate().first<ShipmentRow>();
        if (now?.store_closed_at && !storeFixed(now) && mapStatus(now.delivery_sub_type ?? '', now.last_rtn_code ?? '').state === 'store_changed') {
          await this.tellUnrecordedChange(trx, after, locked, now, now.last_rtn_code ?? '', now.last_rtn_msg ?? '');
        }
      });
      return { kind: 'unavailable', orderNo: order.order_no };
    }
    const storeAddress = args.storeAddress ?? null;
    await this.d.uow.run(async (trx, after) => {
      const locked = (await lockOrder(trx, { id: order.id })) as DeliveryOrder;
      const closedStoreId = locked.store_id ?? '';
      await trx('shipments').where({ id: s.id }).forUpdate().first('id');
      await trx('orders')
        .where({ id: order.id })
        .update({ store_id: args.storeId, store_name: args.storeName, store_address: storeAddress, store_outside: args.storeOutside ?? null, updated_at: trx.fn.now() });
      // The parcel keeps its status (created or shipped: still on its way); the closure is fixed.
      await trx('shipments').where({ id: s.id }).update({ store_fixed_at: trx.fn.now(), store_change_claimed_at: null, updated_at: trx.fn.now() });
      await trx('delivery_links').where({ shipment_id: s.id, purpose: 'store-change' }).whereNull('used_at').update({ used_at: trx.fn.now() });
      await audit(trx, actor, {
        action: 'order.store',
        targetType: 'order',
        targetId: order.order_no,
        before: { storeId: locked.store_id, storeName: locked.store_name, storeAddress: locked.store_address },
        after: { storeId: args.storeId, storeName: args.storeName, storeAddress, shipmentId: s.id },
      });
      const key = `shipment:${s.id}:store-changed:${closedStoreId}:${args.storeId}`;
      await this.d.notifier.shopper(trx, after, locked.line_user_id, key, {
        type: 'store-changed',
        orderNo: order.order_no,
        subType: s.delivery_sub_type ?? '',
        storeName: args.storeName,
        storeAddress,
      });
      if (actor.role === 'shopper') {
        await this.d.notifier.owners(trx, after, key, { type: 'store-changed', orderNo: order.order_no, storeName: args.storeName, storeAddress: storeAddress ?? '', oldStoreName: locked.store_name ?? closedStoreId });
      }
    });
    return { kind: 'updated', orderNo: order.order_no, storeName: args.storeName, storeAddress };
  }

  /** When the newest unused store-change link of these parcels expires, or null. */
  private async openStoreChangeLinkUntil(db: Db | Trx, shipmentIds: number[]): Promise<Date | null> {
    if (shipmentIds.length === 0) return null;
    const row = await db('delivery_links').whereIn('shipment_id', shipmentIds).where({ purpose: 'store-change' }).whereNull('used_at').orderBy('id', 'desc').first('expires_at');
    return row ? (row.expires_at as Date) : null;
  }

  /**
   * The signed form that opens ECPay's printable label of the order's parcel (§10), or null when
   * it has none yet (not created, or home delivery). Open it top-level in a new tab.
   */
  async labelPage(orderNo: string): Promise<{ html: string; action: string } | null> {
    const logistics = this.d.logistics;
    if (!logistics) return null;
    const order = await this.d.db('orders').whereRaw('upper(order_no) = upper(?)', [orderNo]).first<DeliveryOrder>();
    const s = order ? await this.live(this.d.db, order.id) : undefined;
    if (!s || !canPrintLabel(s)) return null;
    const form = logistics.printForm({
      subType: s.delivery_sub_type as CvsSubType,
      allPayLogisticsId: s.logistics_id!,
      cvsPaymentNo: s.shipment_no ?? '',
      cvsValidationNo: s.validation_no ?? undefined,
    });
    return { html: logistics.renderFormPage(form, 'print'), action: form.action };
  }

  // -------------------------------------------------------------------------------------------
  // Reading

  async delivery(db: Db | Trx, order: DeliveryOrder): Promise<DeliveryDetail> {
    const shipments = await db('shipments').where({ order_id: order.id }).orderBy('id').select<ShipmentRow[]>('*');
    const ids = shipments.map((s) => s.id);
    const history = ids.length
      ? await db('logistics_notifications')
          .whereIn('shipment_id', ids)
          .orderBy('id')
          .select('id', 'shipment_id', 'rtn_code', 'rtn_msg', 'update_status_date', 'outcome', 'received_at')
      : [];
    const live = shipments.filter((s) => s.status !== 'failed');
    return {
      method: order.delivery_method,
      subType: order.delivery_sub_type,
      recipientName: order.recipient_name,
      recipientPhone: maskPhone(order.recipient_phone),
      address: order.recipient_address ? `${order.recipient_zip ? `${order.recipient_zip} ` : ''}${order.recipient_address}` : null,
      storeId: order.store_id,
      storeName: order.store_name,
      storeAddress: order.store_address,
      shipments: shipments.map((s) => ({
        shipment: s,
        dropOffCode: s.provider === 'ecpay' ? shipmentDropOffCode(s) : null,
        printable: this.d.logistics !== null && canPrintLabel(s),
        history: history.filter((h) => h.shipment_id === s.id),
      })),
      // shipped without a live shipment: the parcel's drop-off window passed, it needs a new one.
      canShipCvs: order.delivery_method === 'cvs' && (order.status === 'paid' || order.status === 'shipped') && live.length === 0 && this.d.logistics !== null,
      canChangeStore: this.d.logistics !== null && live.some(canChangeStore),
      shopperAskedUntil: await this.openStoreChangeLinkUntil(db, live.filter(canChangeStore).map((s) => s.id)),
    };
  }
}

// ---------------------------------------------------------------------------------------------

function stringFieldsOf(body: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (body && typeof body === 'object') {
    // Text and jsonb cannot hold U+0000 or a lone surrogate: such characters are stored as U+FFFD.
    for (const [k, v] of Object.entries(body as Record<string, unknown>).slice(0, 60)) out[storableString(k.slice(0, 60))] = storableString(String(v).slice(0, 300));
  }
  return out;
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));
