import crypto from 'node:crypto';
import type { Db } from '../data/db';
import type { LogisticsPort } from '../gateways/ecpay-logistics';
import { isCvsSubType, type CvsSubType } from '../gateways/ecpay-logistics/sub-types';
import { sha256 } from './delivery-links';
import type { Order } from './orders';
import { canChangeStore, type DeliveryOrder, type ShipmentRow, type Shipments } from './shipments';

/**
 * A new pickup store chosen by the shopper after the parcel's store closed (specs/ecpay-logistics.md
 * §8 "Bot flow"): the closure pushed the shopper a store-change link (shipments.ts,
 * askShopperForStore); its page opens ECPay's store map for the parcel's own chain (a parcel cannot
 * change chain at ECPay); the map's reply (the same ServerReplyURL as checkout's, told apart by the
 * link's map token and purpose) is checked like checkout's and handed to the one use case both
 * entry points share, Shipments.changePickupStore (the owner's back-office form is the other).
 *
 * The domain returns states; web/store-change-routes renders them.
 */

const REF = /^[A-Za-z0-9_-]{20,64}$/;

interface StoreLinkRow {
  id: number;
  order_id: number;
  shipment_id: number;
  closed_store_id: string;
  map_token: string;
  csrf_token: string;
  expires_at: Date;
  used_at: Date | null;
}

/** The parcel's store as the pages show it. */
export interface StoreView {
  subType: CvsSubType;
  name: string;
  address: string | null;
}

export type StoreChangeState =
  | { kind: 'not-found' }
  /** A new store was recorded (by this link, the owner, or ECPay's store_changed): nothing to choose. */
  | { kind: 'done'; order: Order; store: StoreView }
  | { kind: 'expired'; order: Order }
  /** The parcel cannot take a new store (moved on, returned, not a closure any more). */
  | { kind: 'not-needed'; order: Order }
  | { kind: 'open'; ref: string; csrf: string; order: Order; closedStore: StoreView };

export type StoreMapOpen = { kind: 'map'; html: string } | Exclude<StoreChangeState, { kind: 'open' }>;

export type StoreReplyOutcome =
  /** Not a store-change link's map token: checkout's reply handler takes it. */
  | { kind: 'not-mine' }
  | { kind: 'rejected'; reason: string; ref: string }
  | { kind: 'updated'; order: Order; store: StoreView }
  /** ECPay refused the store, or did not answer, or another change is running: nothing changed. */
  | { kind: 'failed'; why: 'refused' | 'unavailable' | 'busy'; ref: string; order: Order }
  | Exclude<StoreChangeState, { kind: 'open' }>;

export interface StoreChangeDeps {
  db: Db;
  logistics: LogisticsPort | null;
  shipments: Shipments;
  publicBaseUrl: string;
}

export class StoreChange {
  constructor(private readonly d: StoreChangeDeps) {}

  private async linkByRef(ref: string): Promise<StoreLinkRow | undefined> {
    if (!REF.test(ref)) return undefined;
    // The page's own token (hashed), or the map token the store map's reply sends the browser back with.
    return this.d.db('delivery_links')
      .where({ purpose: 'store-change' })
      .where((q) => q.where({ token_hash: sha256(ref) }).orWhere({ map_token: ref }))
      .first<StoreLinkRow>();
  }

  /** Where a link stands: done, expired, not needed, or open for a new store. */
  private async stateOf(link: StoreLinkRow, ref: string): Promise<StoreChangeState & { shipment?: ShipmentRow }> {
    const db = this.d.db;
    const order = (await db('orders').where({ id: link.order_id }).first<DeliveryOrder>())!;
    const shipment = await db('shipments').where({ id: link.shipment_id }).first<ShipmentRow>();
    const sub = shipment?.delivery_sub_type ?? order.delivery_sub_type ?? '';
    const current: StoreView | null = isCvsSubType(sub) ? { subType: sub, name: order.store_name ?? order.store_id ?? '', address: order.store_address } : null;
    // Checked before expiry: the link says "done" for as long as it is opened.
    if (current && (link.used_at || order.store_id !== link.closed_store_id)) return { kind: 'done', order, store: current };
    if (link.expires_at.getTime() <= Date.now()) return { kind: 'expired', order };
    if (!shipment || !current || !canChangeStore(shipment)) return { kind: 'not-needed', order };
    return { kind: 'open', ref, csrf: link.csrf_token, order, closedStore: current, shipment };
  }

  /** GET /store-change/:ref. */
  async page(ref: string): Promise<StoreChangeState> {
    const link = await this.linkByRef(ref);
    if (!link) return { kind: 'not-found' };
    const { shipment: _s, ...state } = await this.stateOf(link, ref);
    return state as StoreChangeState;
  }

  /** Whether a POST carries the link's CSRF token (constant time). */
  async csrfValid(ref: string, sent: string): Promise<boolean> {
    const link = await this.linkByRef(ref);
    if (!link?.csrf_token) return false;
    const a = Buffer.from(sent);
    const b = Buffer.from(link.csrf_token);
    return a.length === b.length && crypto.timingSafeEqual(a, b);
  }

  /** 開啟門市地圖: the page posting the signed Express/map form for the parcel's chain, the link's map token as ExtraData. */
  async openMap(ref: string): Promise<StoreMapOpen> {
    const logistics = this.d.logistics;
    const link = await this.linkByRef(ref);
    if (!link) return { kind: 'not-found' };
    const state = await this.stateOf(link, ref);
    if (state.kind !== 'open') return state;
    if (!logistics) return { kind: 'not-needed', order: state.order };
    const form = logistics.mapForm({
      subType: state.closedStore.subType,
      token: link.map_token,
      serverReplyUrl: `${this.d.publicBaseUrl}/logistics/ecpay/map-reply`,
      cashOnPickup: false,
      device: 'mobile',
    });
    return { kind: 'map', html: logistics.renderFormPage(form, 'map') };
  }

  /**
   * The store map's reply when its ExtraData is a store-change link's map token: the fields are
   * checked as checkout checks them (parseMapReply), the chain must be the parcel's, then the
   * shared use case tells ECPay (outside any transaction) and records the store on `1|OK`. A
   * replayed reply finds the link used ("done") and changes and pushes nothing.
   */
  async mapReply(body: unknown): Promise<StoreReplyOutcome> {
    const logistics = this.d.logistics;
    if (!logistics) return { kind: 'not-mine' };
    const parsed = logistics.parseMapReply(body);
    if (!parsed.ok) return { kind: 'not-mine' }; // checkout's handler rejects it the same way
    const s = parsed.store;
    const link = await this.d.db('delivery_links').where({ map_token: s.token, purpose: 'store-change' }).first<StoreLinkRow>();
    if (!link) return { kind: 'not-mine' };
    // The page token is stored hashed only: pages after the map use the map token as their ref.
    const ref = link.map_token;
    const state = await this.stateOf(link, ref);
    if (state.kind !== 'open') return state;
    if (s.subType !== state.closedStore.subType) return { kind: 'rejected', reason: 'LogisticsSubType is not the parcel\'s chain', ref };
    const order = state.order;
    const r = await this.d.shipments.changePickupStore(
      { userId: order.line_user_id, source: 'line', role: 'shopper' },
      { orderNo: order.order_no, storeId: s.storeId, storeName: s.storeName, storeAddress: s.storeAddress, storeOutside: s.outside },
    );
    switch (r.kind) {
      case 'updated':
        return { kind: 'updated', order, store: { subType: s.subType, name: s.storeName, address: s.storeAddress } };
      case 'refused':
      case 'unavailable':
      case 'busy':
        return { kind: 'failed', why: r.kind, ref, order };
      case 'not-found':
        return { kind: 'not-found' };
      case 'not-possible': {
        const again = await this.stateOf((await this.d.db('delivery_links').where({ id: link.id }).first<StoreLinkRow>())!, ref);
        return again.kind === 'open' ? { kind: 'not-needed', order } : (({ shipment: _x, ...rest }) => rest as StoreReplyOutcome)(again);
      }
    }
  }
}
