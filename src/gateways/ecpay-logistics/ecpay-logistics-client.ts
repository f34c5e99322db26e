import { randomBytes } from 'node:crypto';
import type { EcpayLogisticsConfig } from '../../config';
import { DELIVERY_PAGE } from '../../texts';
import { formatEcpayDateTime } from '../ecpay/ecpay-client';
import { dateOrNull } from '../ecpay/ecpay-gateway';
import { EcpayHostClient, renderAutoSubmitPage, singleStringFields, type EcpayForm, type EcpayHostOptions } from '../ecpay/ecpay-http';
import { GatewayError } from '../payment-gateway';
import { isValidGoodsName } from './goods-name';
import { parseSignedAnswer, signLogistics, verifyLogisticsMac, type LogisticsKeys } from './logistics-mac';
import { checkCellPhone, checkContactName } from './recipient';
import { CREATE_ACCEPTED_CODES, mapStatus, type StatusMapping } from './status-codes';
import { CHAIN_OF, isCvsSubType, type CvsSubType } from './sub-types';
import type { LogisticsPort } from './index';

/**
 * ECPay 物流整合 API client for convenience-store pickup (specs/ecpay-logistics.md): the store
 * map form and its reply, Express/Create, status notifications, QueryLogisticsTradeInfo/V5,
 * store changes, C2C cancellation and label printing. MD5 CheckMacValue throughout (§3).
 * No database, no express, no process.env.
 */

export type LogisticsForm = EcpayForm;

/** ExtraData / map MerchantTradeNo: what we may put there and get back unchanged (String(20), §5.2). */
const TOKEN = /^[A-Za-z0-9_-]{1,20}$/;
const MERCHANT_TRADE_NO = /^[A-Za-z0-9]{1,20}$/;
const LOGISTICS_ID = /^\d{1,20}$/;
const URL_MAX = 200;
const GOODS_AMOUNT_MAX = 20000;
/** Query's TimeStamp is valid for 3 minutes (§9). */
export const QUERY_TIMESTAMP_WINDOW_S = 180;

/** The answer every logistics notification must get once it is verified and recorded (§7.2). */
export const LOGISTICS_ACK = '1|OK';
/** The answer to a notification we refuse (bad MAC, another merchant): ECPay retries it. */
export const logisticsNack = (reason: string): string => `0|${reason.replace(/[\r\n|]/g, ' ').slice(0, 100)}`;

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * Why ECPay refused a call (`0|<message>`), worked out from its message (ECPay sends text, not
 * codes, and the texts are not all documented — §3, §6.2):
 * - BAD_MAC: CheckMacValue refused — wrong keys (logistics keys are not the AIO keys).
 * - DUPLICATE_TRADE_NO: the MerchantTradeNo was used before.
 * - STORE: the store is unknown or closed — let the buyer pick another one (§8, §11 item 10).
 * - TIMESTAMP: Query's TimeStamp is stale (clock off, or a slow call): a fresh call may pass.
 * - NOT_FOUND: no such shipment.
 * - OTHER: anything else; `rtnMsg` has ECPay's words.
 */
export type LogisticsRejectReason = 'BAD_MAC' | 'DUPLICATE_TRADE_NO' | 'STORE' | 'TIMESTAMP' | 'NOT_FOUND' | 'OTHER';

export class LogisticsRejectedError extends GatewayError {
  constructor(
    readonly reason: LogisticsRejectReason,
    /** ECPay's message, verbatim (for logs and the owner; never shown raw to shoppers). */
    readonly rtnMsg: string,
    op: string,
    details: Record<string, unknown> = {},
  ) {
    super('REJECTED', `ECPay ${op} refused: ${rtnMsg}`, reason === 'TIMESTAMP', { op, reason, rtnMsg, ...details });
  }
}

/** Classifies an ECPay refusal message (§3 examples: `ReceiverStoreID Is Null`, `TimeStamp Is Expired`, `CheckMacValue驗證錯誤`). */
export function classifyRejection(message: string): LogisticsRejectReason {
  if (/CheckMacValue/i.test(message)) return 'BAD_MAC';
  if (/MerchantTradeNo|訂單編號|交易編號/i.test(message) && /重複|重覆|duplicat|repeat|exist|已存在|已使用/i.test(message)) {
    return 'DUPLICATE_TRADE_NO';
  }
  if (/TimeStamp/i.test(message)) return 'TIMESTAMP';
  if (/StoreID|門市|店舖|店鋪/i.test(message)) return 'STORE';
  if (/查無|not\s*found|不存在|無此/i.test(message)) return 'NOT_FOUND';
  return 'OTHER';
}

/** `0|message` → the message; null for anything else. */
function refusalOf(body: string): string | null {
  const m = /^0\|([\s\S]*)$/.exec(body.replace(/[\r\n]+$/, ''));
  return m ? m[1]!.trim() : null;
}

// ---------------------------------------------------------------------------------------------
// Trade numbers and tokens

/**
 * A fresh MerchantTradeNo (`prefix` + base-36 time + 8 hex digits, ≤ 20 alphanumerics). The
 * public stage account is shared by everyone, so a bare order number would collide there (§6.1).
 */
export function newLogisticsTradeNo(prefix = 'L'): string {
  if (!/^[A-Za-z]{1,4}$/.test(prefix)) throw new RangeError('prefix must be 1-4 letters');
  return `${prefix}${Date.now().toString(36).toUpperCase()}${randomBytes(4).toString('hex').toUpperCase()}`.slice(0, 20);
}

/** An opaque, unguessable correlation token for one store-map session (ExtraData, 20 characters). */
export function newMapToken(): string {
  return randomBytes(15).toString('base64url');
}

// ---------------------------------------------------------------------------------------------
// Types

export interface MapFormInput {
  subType: CvsSubType;
  /** Opaque correlation token, echoed back in the reply's ExtraData: [A-Za-z0-9_-]{1,20}. */
  token: string;
  /** Where the buyer's browser posts the chosen store (our map-reply endpoint), ≤ 200 characters. */
  serverReplyUrl: string;
  /** The buyer pays at the counter (IsCollection=Y), so the map reflects cash on pickup. */
  cashOnPickup: boolean;
  /** Default 'mobile' (Device=1): the map is opened from LINE. */
  device?: 'mobile' | 'pc';
  /** Default: a fresh one. The map wants a MerchantTradeNo unique per session, not the shipment's. */
  merchantTradeNo?: string;
}

export interface MapStore {
  /** Opaque token from ExtraData. */
  token: string;
  merchantTradeNo: string;
  subType: CvsSubType;
  storeId: string;
  storeName: string;
  storeAddress: string;
  /** Not returned for 7-ELEVEN. */
  storeTelephone?: string;
  /** An outlying-island store (CVSOutSide=1; 7-ELEVEN and FamilyMart only). */
  outside: boolean;
}

export type MapReplyRejection = 'MALFORMED' | 'WRONG_MERCHANT' | 'BAD_SUB_TYPE' | 'BAD_STORE';
export type MapReplyResult = { ok: true; store: MapStore } | { ok: false; reason: MapReplyRejection; detail: string };

export interface CreateShipmentInput {
  /** Ours, unique per shipment (a retry after a refusal needs a new one): [A-Za-z0-9]{1,20}. */
  merchantTradeNo: string;
  /** The order's time; default now. Sent as `yyyy/MM/dd HH:mm:ss` Taipei time. */
  merchantTradeDate?: Date;
  subType: CvsSubType;
  /** Integer TWD 1–20000: the order total, also the compensation value if the parcel is lost. */
  goodsAmount: number;
  /**
   * Cash on pickup: sends IsCollection=Y and CollectionAmount = goodsAmount. False (prepaid)
   * sends IsCollection=N explicitly — ECPay's default is N and a forgotten Y silently loses the
   * money (§11 item 2), so the caller must say which.
   */
  cashOnPickup: boolean;
  /** Already made safe by goodsNameFor(); refused otherwise. */
  goodsName: string;
  receiverName: string;
  /** `09xxxxxxxx`. */
  receiverCellPhone: string;
  receiverEmail?: string;
  /** From the map reply. */
  receiverStoreId: string;
  /** C2C return store (default: the store where the parcel was dropped off). */
  returnStoreId?: string;
  /** Status notifications go here (our notify endpoint), ≤ 200 characters. */
  serverReplyUrl: string;
  /**
   * 7-ELEVEN C2C store-change notices (LogisticsC2CReplyURL, §7.5); default serverReplyUrl —
   * verifyNotification tells the two kinds apart. Sent for UNIMARTC2C only.
   */
  storeChangeUrl?: string;
}

export interface CreatedShipment {
  allPayLogisticsId: string;
  merchantTradeNo: string;
  subType: CvsSubType;
  /** C2C drop-off code (7-ELEVEN 8 characters, FamilyMart 11 digits…); '' for B2C (use Query's ShipmentNo). */
  cvsPaymentNo: string;
  /** 7-ELEVEN C2C only (4 digits); '' otherwise. */
  cvsValidationNo: string;
  bookingNote: string;
  rtnCode: number;
  rtnMsg: string;
  status: StatusMapping;
  /** Parsed UpdateStatusDate; null when missing or unreadable. */
  updatedAt: Date | null;
  /** Every verified field of the answer. */
  fields: Record<string, string>;
}

export interface StatusNotification {
  kind: 'status';
  merchantTradeNo: string;
  allPayLogisticsId: string;
  logisticsType: string;
  subType: string;
  rtnCode: number;
  rtnMsg: string;
  status: StatusMapping;
  goodsAmount: number | null;
  /** Raw UpdateStatusDate, part of the event's idempotency key with the id and the code (§7.2). */
  updateStatusDate: string;
  updatedAt: Date | null;
  cvsPaymentNo: string;
  cvsValidationNo: string;
  bookingNote: string;
  fields: Record<string, string>;
}

/** 7-ELEVEN C2C store-change notice (LogisticsC2CReplyURL, §7.5; field names [U] in the spec). */
export interface StoreChangeNotification {
  kind: 'store-change';
  allPayLogisticsId: string;
  store: 'pickup' | 'return';
  /** 01 closed or relocated, 02 old store number updated, 03 return store unknown, 04 temporarily closed. */
  change: 'closed' | 'id-updated' | 'return-store-unknown' | 'temporarily-closed' | 'unknown';
  storeId: string;
  /** store_changed for an updated store number (delivery goes on), store_closed otherwise. */
  status: StatusMapping;
  fields: Record<string, string>;
}

export type LogisticsNotification = StatusNotification | StoreChangeNotification;

export type NotificationVerification =
  | { ok: true; notification: LogisticsNotification }
  | { ok: false; reason: 'MALFORMED' | 'BAD_MAC' | 'WRONG_MERCHANT' };

export type ShipmentRef = { allPayLogisticsId: string } | { merchantTradeNo: string };

export interface ShipmentInfo {
  allPayLogisticsId: string;
  merchantTradeNo: string;
  subType: string;
  logisticsType: string;
  goodsAmount: number | null;
  /** LogisticsStatus, same code space as notifications. */
  statusCode: number | null;
  status: StatusMapping;
  /** Shipping fee ECPay charges (HandlingCharge), integer TWD; null when absent. */
  handlingCharge: number | null;
  collectionAmount: number | null;
  /** COD payout: CollectionAllocateDate / CollectionAllocateAmount (§12). */
  collectionAllocateDate: string;
  collectionAllocateAmount: number | null;
  cvsPaymentNo: string;
  cvsValidationNo: string;
  /** Shipment number: B2C's, and for 7-ELEVEN C2C the 12-character 交貨便 code (Q1). */
  shipmentNo: string;
  bookingNote: string;
  tradeDate: string;
  fields: Record<string, string>;
}

export interface ShipmentCodes {
  subType: CvsSubType;
  allPayLogisticsId: string;
  cvsPaymentNo: string;
  /** 7-ELEVEN C2C only. */
  cvsValidationNo?: string;
}

export interface UpdateStoreInput extends ShipmentCodes {
  /** The pickup store (01) or the return store (02). */
  store: 'pickup' | 'return';
  storeId: string;
}

/**
 * `gate`: the shared pause after an HTTP 403 (§2: too-fast polling is answered 403). The logistics
 * host is not the payment host: give it a gate of its own.
 */
export interface EcpayLogisticsClientOptions extends EcpayHostOptions {
  config: EcpayLogisticsConfig;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function checkUrl(name: string, url: string): string {
  if (url.length > URL_MAX || !/^https?:\/\/[^\s]+$/.test(url)) {
    throw new RangeError(`${name} must be an http(s) URL of at most ${URL_MAX} characters`);
  }
  return url;
}

function intOrNull(s: string | undefined): number | null {
  return s !== undefined && /^-?\d{1,9}$/.test(s.trim()) ? Number(s.trim()) : null;
}

/** Store ID shapes (§5.3): 7-ELEVEN and FamilyMart 6 digits, OK 4 digits, Hi-Life not documented. */
function isStoreIdFor(subType: CvsSubType, id: string): boolean {
  switch (CHAIN_OF[subType]) {
    case 'UNIMART':
    case 'FAMI':
      return /^\d{6}$/.test(id);
    case 'OKMART':
      return /^\d{4,6}$/.test(id);
    case 'HILIFE':
      return /^[A-Za-z0-9]{1,10}$/.test(id);
  }
}

const TEXT_CONTROL = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\ufeff]/g;

/** Text from the unsigned map reply: invisible characters dropped, white space folded, bounded. */
function cleanText(s: string | undefined, max: number): string | null {
  const t = (s ?? '').replace(TEXT_CONTROL, ' ').replace(/\s+/g, ' ').trim();
  return [...t].length <= max ? t : null;
}

/** The chain's print API (§10). */
export const PRINT_PATH: Readonly<Record<CvsSubType, string>> = {
  UNIMARTC2C: '/Express/PrintUniMartC2COrderInfo',
  FAMIC2C: '/Express/PrintFAMIC2COrderInfo',
  HILIFEC2C: '/Express/PrintHILIFEC2COrderInfo',
  OKMARTC2C: '/Express/PrintOKMARTC2COrderInfo',
  UNIMART: '/helper/printTradeDocument',
  UNIMARTFREEZE: '/helper/printTradeDocument',
  FAMI: '/helper/printTradeDocument',
  HILIFE: '/helper/printTradeDocument',
};

/**
 * What the seller types at the store kiosk to print the label (§10): 7-ELEVEN ibon takes the
 * 12-character 交貨便 code CVSPaymentNo + CVSValidationNo; FamiPort, Life-ET and OK.go take
 * CVSPaymentNo alone.
 */
export function dropOffCode(subType: CvsSubType, cvsPaymentNo: string, cvsValidationNo = ''): string {
  return subType === 'UNIMARTC2C' ? `${cvsPaymentNo}${cvsValidationNo}` : cvsPaymentNo;
}

// ---------------------------------------------------------------------------------------------

export class EcpayLogisticsClient extends EcpayHostClient implements LogisticsPort {
  readonly config: EcpayLogisticsConfig;
  private readonly keys: LogisticsKeys;

  constructor(opts: EcpayLogisticsClientOptions) {
    super(opts.config.apiBaseUrl, opts);
    this.config = opts.config;
    this.keys = { hashKey: opts.config.hashKey, hashIv: opts.config.hashIv };
  }

  /** The store chains this account offers. */
  get subTypes(): readonly CvsSubType[] {
    return this.config.subTypes;
  }

  private offered(subType: string): CvsSubType {
    if (!isCvsSubType(subType) || !this.config.subTypes.includes(subType)) {
      throw new RangeError(`sub-type ${subType} is not offered by this logistics account`);
    }
    return subType;
  }

  // -------------------------------------------------------------------------------------------
  // Store map (§5)

  /**
   * The `Express/map` form the buyer's browser must post, top-level (never in an iframe). The
   * spec does not list a CheckMacValue for it, ECPay's own SDK sends one, and it is harmless: sent.
   */
  mapForm(input: MapFormInput): LogisticsForm {
    const subType = this.offered(input.subType);
    if (!TOKEN.test(input.token)) throw new RangeError('token must match [A-Za-z0-9_-]{1,20}');
    const merchantTradeNo = input.merchantTradeNo ?? newLogisticsTradeNo('M');
    if (!MERCHANT_TRADE_NO.test(merchantTradeNo)) throw new RangeError('merchantTradeNo must match [A-Za-z0-9]{1,20}');
    const fields = signLogistics(
      {
        MerchantID: this.config.merchantId,
        MerchantTradeNo: merchantTradeNo,
        LogisticsType: 'CVS',
        LogisticsSubType: subType,
        IsCollection: input.cashOnPickup ? 'Y' : 'N',
        ServerReplyURL: checkUrl('serverReplyUrl', input.serverReplyUrl),
        ExtraData: input.token,
        Device: (input.device ?? 'mobile') === 'mobile' ? '1' : '0',
      },
      this.keys,
    );
    return { action: `${this.origin}/Express/map`, fields };
  }

  /** A zh-TW page that sends the browser to ECPay's map (or print page) by posting the form on load. */
  renderFormPage(form: LogisticsForm, kind: 'map' | 'print' = 'map'): string {
    const t =
      kind === 'map'
        ? { title: DELIVERY_PAGE.mapRedirectTitle, body: DELIVERY_PAGE.mapRedirectBody, button: DELIVERY_PAGE.mapRedirectButton }
        : { title: DELIVERY_PAGE.printRedirectTitle, body: DELIVERY_PAGE.printRedirectBody, button: DELIVERY_PAGE.printRedirectButton };
    return renderAutoSubmitPage(form, t, kind === 'map' ? 'ecpay-map' : 'ecpay-print');
  }

  /**
   * The map's reply, posted by the buyer's browser to ServerReplyURL (§5.3). It is not signed,
   * so every field is treated as user input: our merchant, a sub-type we offer (and the one
   * requested, when given), a store ID of the chain's shape, bounded texts. A CheckMacValue, if
   * one ever comes, must verify. The caller still has to find the token it issued.
   */
  parseMapReply(body: unknown, expect: { subType?: CvsSubType } = {}): MapReplyResult {
    const bad = (reason: MapReplyRejection, detail: string): MapReplyResult => ({ ok: false, reason, detail });
    const f = singleStringFields(body);
    if (!f) return bad('MALFORMED', 'not a form of single fields');
    if (f.CheckMacValue !== undefined && !verifyLogisticsMac(f, this.keys)) return bad('MALFORMED', 'CheckMacValue does not verify');
    if (f.MerchantID !== this.config.merchantId) return bad('WRONG_MERCHANT', 'MerchantID is not ours');
    const token = f.ExtraData ?? '';
    if (!TOKEN.test(token)) return bad('MALFORMED', 'ExtraData is not one of our tokens');
    const merchantTradeNo = f.MerchantTradeNo ?? '';
    if (!MERCHANT_TRADE_NO.test(merchantTradeNo)) return bad('MALFORMED', 'MerchantTradeNo is malformed');
    const subType = f.LogisticsSubType ?? '';
    if (!isCvsSubType(subType) || !this.config.subTypes.includes(subType)) return bad('BAD_SUB_TYPE', 'LogisticsSubType is not offered');
    if (expect.subType !== undefined && subType !== expect.subType) return bad('BAD_SUB_TYPE', 'LogisticsSubType is not the one requested');
    const storeId = (f.CVSStoreID ?? '').trim();
    if (!isStoreIdFor(subType, storeId)) return bad('BAD_STORE', 'CVSStoreID has the wrong shape for the chain');
    // Documented maxima are 10 / 60 / 20 (§5.3); a little room, since only ECPay's pages are bound by them.
    const storeName = cleanText(f.CVSStoreName, 30);
    const storeAddress = cleanText(f.CVSAddress, 120);
    const storeTelephone = cleanText(f.CVSTelephone, 30);
    if (!storeName || !storeAddress || storeTelephone === null) return bad('BAD_STORE', 'store name, address or telephone missing or too long');
    const outside = (f.CVSOutSide ?? '').trim();
    if (outside !== '' && outside !== '0' && outside !== '1') return bad('BAD_STORE', 'CVSOutSide is not 0 or 1');
    const store: MapStore = { token, merchantTradeNo, subType, storeId, storeName, storeAddress, outside: outside === '1' };
    if (storeTelephone !== '') store.storeTelephone = storeTelephone;
    return { ok: true, store };
  }

  // -------------------------------------------------------------------------------------------
  // Express/Create (§6)

  /** The signed Express/Create fields for one shipment; RangeError for anything ECPay would refuse. */
  private createFields(input: CreateShipmentInput): Record<string, string> {
    const subType = this.offered(input.subType);
    if (!MERCHANT_TRADE_NO.test(input.merchantTradeNo)) throw new RangeError('merchantTradeNo must match [A-Za-z0-9]{1,20}');
    if (!Number.isSafeInteger(input.goodsAmount) || input.goodsAmount < 1 || input.goodsAmount > GOODS_AMOUNT_MAX) {
      throw new RangeError(`goodsAmount must be an integer TWD from 1 to ${GOODS_AMOUNT_MAX}`);
    }
    if (!isValidGoodsName(input.goodsName)) throw new RangeError('goodsName must come from goodsNameFor() (≤ 50 characters, no forbidden symbols)');
    const name = checkContactName(input.receiverName);
    if (!name.ok || name.value !== input.receiverName) throw new RangeError('receiverName must pass checkContactName() first');
    const phone = checkCellPhone(input.receiverCellPhone);
    if (!phone.ok || phone.value !== input.receiverCellPhone) throw new RangeError('receiverCellPhone must be 09 and 8 digits');
    if (!isStoreIdFor(subType, input.receiverStoreId)) throw new RangeError('receiverStoreId has the wrong shape for the chain');
    if (input.returnStoreId !== undefined && !isStoreIdFor(subType, input.returnStoreId)) {
      throw new RangeError('returnStoreId has the wrong shape for the chain');
    }
    if (input.receiverEmail !== undefined && (input.receiverEmail.length > 50 || !/^[^\s@&=]+@[^\s@&=]+$/.test(input.receiverEmail))) {
      throw new RangeError('receiverEmail must be an e-mail address of at most 50 characters');
    }
    const fields: Record<string, string> = {
      MerchantID: this.config.merchantId,
      MerchantTradeNo: input.merchantTradeNo,
      MerchantTradeDate: formatEcpayDateTime(input.merchantTradeDate ?? this.now()),
      LogisticsType: 'CVS',
      LogisticsSubType: subType,
      GoodsAmount: String(input.goodsAmount),
      IsCollection: input.cashOnPickup ? 'Y' : 'N',
      GoodsName: input.goodsName,
      SenderName: this.config.senderName,
      SenderCellPhone: this.config.senderCellPhone,
      ReceiverName: input.receiverName,
      ReceiverCellPhone: input.receiverCellPhone,
      ReceiverStoreID: input.receiverStoreId,
      ServerReplyURL: checkUrl('serverReplyUrl', input.serverReplyUrl),
    };
    // Cash on pickup collects exactly the goods amount (the 7-ELEVEN rule, sent for every chain, §6.1).
    if (input.cashOnPickup) fields.CollectionAmount = String(input.goodsAmount);
    if (input.receiverEmail !== undefined) fields.ReceiverEmail = input.receiverEmail;
    if (input.returnStoreId !== undefined) fields.ReturnStoreID = input.returnStoreId;
    if (subType === 'UNIMARTC2C') {
      fields.LogisticsC2CReplyURL = checkUrl('storeChangeUrl', input.storeChangeUrl ?? input.serverReplyUrl);
    }
    return signLogistics(fields, this.keys);
  }

  /**
   * Express/Create, server to server. Not idempotent: a timeout or a lost answer is reported as not
   * retryable — ask queryShipment({ merchantTradeNo }) first, and only when nothing exists try
   * again with a new MerchantTradeNo (§6.2). A refusal (`0|…`) becomes LogisticsRejectedError.
   */
  async createShipment(input: CreateShipmentInput): Promise<CreatedShipment> {
    const params = this.createFields(input);
    const op = 'Express/Create';
    const body = await this.postOrRefusal('/Express/Create', params, op, false);
    const refusal = refusalOf(body);
    if (refusal !== null) {
      this.logger?.warn({ op, merchantTradeNo: input.merchantTradeNo, rtnMsg: refusal }, 'ecpay logistics create refused');
      throw new LogisticsRejectedError(classifyRejection(refusal), refusal, op, { merchantTradeNo: input.merchantTradeNo });
    }
    const m = /^1\|([\s\S]*)$/.exec(body.replace(/[\r\n]+$/, ''));
    if (!m) throw new GatewayError('BAD_RESPONSE', 'Express/Create answered neither 1| nor 0|', false, { op, body: body.slice(0, 200) });
    // The leading `1|` is not part of the signed data (§3).
    const fields = parseSignedAnswer(m[1]!, this.keys);
    if (!fields) {
      throw new GatewayError('BAD_SIGNATURE', 'Express/Create answer failed CheckMacValue verification', false, {
        op,
        merchantTradeNo: input.merchantTradeNo,
      });
    }
    if (fields.MerchantID !== this.config.merchantId || fields.MerchantTradeNo !== input.merchantTradeNo) {
      throw new GatewayError('BAD_RESPONSE', 'Express/Create answered for another shipment', false, {
        op,
        merchantTradeNo: input.merchantTradeNo,
        answeredMerchantTradeNo: fields.MerchantTradeNo,
      });
    }
    const id = fields.AllPayLogisticsID ?? '';
    if (!LOGISTICS_ID.test(id)) {
      throw new GatewayError('BAD_RESPONSE', 'Express/Create answer has no AllPayLogisticsID', false, { op, merchantTradeNo: input.merchantTradeNo });
    }
    const rtnCode = intOrNull(fields.RtnCode) ?? 0;
    if (!CREATE_ACCEPTED_CODES.has(rtnCode)) {
      // The shipment exists (it has an ID): report it rather than fail and risk a second parcel.
      this.logger?.warn({ op, merchantTradeNo: input.merchantTradeNo, rtnCode, rtnMsg: fields.RtnMsg }, 'ecpay logistics create: unexpected RtnCode');
    }
    return {
      allPayLogisticsId: id,
      merchantTradeNo: input.merchantTradeNo,
      subType: input.subType,
      cvsPaymentNo: fields.CVSPaymentNo ?? '',
      cvsValidationNo: fields.CVSValidationNo ?? '',
      bookingNote: fields.BookingNote ?? '',
      rtnCode,
      rtnMsg: fields.RtnMsg ?? '',
      status: mapStatus(input.subType, rtnCode),
      updatedAt: dateOrNull(fields.UpdateStatusDate),
      fields,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Notifications (§7)

  /**
   * A status notification (ServerReplyURL) or a 7-ELEVEN C2C store-change notice
   * (LogisticsC2CReplyURL), as the form body express parsed: MD5 MAC over every received field
   * except CheckMacValue, then our MerchantID (a store-change notice may carry none; its MAC
   * proves our key). Answer LOGISTICS_ACK once recorded, logisticsNack(reason) when refused.
   */
  verifyNotification(body: unknown): NotificationVerification {
    const f = singleStringFields(body);
    if (!f) return { ok: false, reason: 'MALFORMED' };
    if (!f.CheckMacValue || !LOGISTICS_ID.test(f.AllPayLogisticsID ?? '')) return { ok: false, reason: 'MALFORMED' };
    const storeChange = f.RtnCode === undefined && f.StoreType !== undefined && f.Status !== undefined;
    if (!storeChange && (f.RtnCode === undefined || !f.MerchantTradeNo || !f.MerchantID)) return { ok: false, reason: 'MALFORMED' };
    if (!verifyLogisticsMac(f, this.keys)) return { ok: false, reason: 'BAD_MAC' };
    if (f.MerchantID !== undefined && f.MerchantID !== this.config.merchantId) return { ok: false, reason: 'WRONG_MERCHANT' };
    if (storeChange) return { ok: true, notification: storeChangeOf(f) };
    const rtnCode = intOrNull(f.RtnCode);
    if (rtnCode === null) return { ok: false, reason: 'MALFORMED' };
    const subType = f.LogisticsSubType ?? '';
    return {
      ok: true,
      notification: {
        kind: 'status',
        merchantTradeNo: f.MerchantTradeNo!,
        allPayLogisticsId: f.AllPayLogisticsID!,
        logisticsType: f.LogisticsType ?? '',
        subType,
        rtnCode,
        rtnMsg: f.RtnMsg ?? '',
        status: mapStatus(subType, rtnCode),
        goodsAmount: intOrNull(f.GoodsAmount),
        updateStatusDate: f.UpdateStatusDate ?? '',
        updatedAt: dateOrNull(f.UpdateStatusDate),
        cvsPaymentNo: f.CVSPaymentNo ?? '',
        cvsValidationNo: f.CVSValidationNo ?? '',
        bookingNote: f.BookingNote ?? '',
        fields: f,
      },
    };
  }

  // -------------------------------------------------------------------------------------------
  // Query (§9)

  /** Helper/QueryLogisticsTradeInfo/V5: the authoritative state of one shipment, MAC-verified. */
  async queryShipment(ref: ShipmentRef): Promise<ShipmentInfo> {
    const op = 'QueryLogisticsTradeInfo';
    const params: Record<string, string> = { MerchantID: this.config.merchantId };
    if ('allPayLogisticsId' in ref) {
      if (!LOGISTICS_ID.test(ref.allPayLogisticsId)) throw new RangeError('allPayLogisticsId must be digits');
      params.AllPayLogisticsID = ref.allPayLogisticsId;
    } else {
      if (!MERCHANT_TRADE_NO.test(ref.merchantTradeNo)) throw new RangeError('merchantTradeNo must match [A-Za-z0-9]{1,20}');
      params.MerchantTradeNo = ref.merchantTradeNo;
    }
    // Unix seconds, valid for 3 minutes: a clock more than that off makes every query fail.
    params.TimeStamp = String(Math.floor(this.now().getTime() / 1000));
    const body = await this.postOrRefusal('/Helper/QueryLogisticsTradeInfo/V5', signLogistics(params, this.keys), op, true);
    const refusal = refusalOf(body);
    if (refusal !== null) throw new LogisticsRejectedError(classifyRejection(refusal), refusal, op, { ...ref });
    const fields = parseSignedAnswer(body, this.keys);
    if (!fields) {
      const signed = /(^|&)CheckMacValue=/.test(body);
      throw new GatewayError(signed ? 'BAD_SIGNATURE' : 'BAD_RESPONSE', `${op} answer ${signed ? 'failed CheckMacValue verification' : 'is not signed'}`, false, {
        op,
        ...ref,
        body: signed ? undefined : body.slice(0, 200),
      });
    }
    const sameShipment =
      'allPayLogisticsId' in ref ? fields.AllPayLogisticsID === ref.allPayLogisticsId : fields.MerchantTradeNo === ref.merchantTradeNo;
    if (fields.MerchantID !== this.config.merchantId || !sameShipment) {
      throw new GatewayError('BAD_RESPONSE', `${op} answered for another shipment`, false, { op, ...ref });
    }
    const statusCode = intOrNull(fields.LogisticsStatus);
    // Query writes the type and sub-type as one value, `CVS_UNIMARTC2C` (a real stage answer,
    // test vector Q1); a separate LogisticsSubType is read too, should one come.
    const [logisticsType = '', combinedSubType = ''] = (fields.LogisticsType ?? '').split('_', 2);
    const subType = fields.LogisticsSubType || combinedSubType;
    return {
      allPayLogisticsId: fields.AllPayLogisticsID ?? '',
      merchantTradeNo: fields.MerchantTradeNo ?? '',
      subType,
      logisticsType,
      goodsAmount: intOrNull(fields.GoodsAmount),
      statusCode,
      status: statusCode === null ? mapStatus(subType, '') : mapStatus(subType, statusCode),
      handlingCharge: intOrNull(fields.HandlingCharge),
      collectionAmount: intOrNull(fields.CollectionAmount),
      collectionAllocateDate: fields.CollectionAllocateDate ?? '',
      collectionAllocateAmount: intOrNull(fields.CollectionAllocateAmount),
      cvsPaymentNo: fields.CVSPaymentNo ?? '',
      cvsValidationNo: fields.CVSValidationNo ?? '',
      shipmentNo: fields.ShipmentNo ?? '',
      bookingNote: fields.BookingNote ?? '',
      tradeDate: fields.TradeDate ?? '',
      fields,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Store problems and cancellation (§8)

  /**
   * C2C Express/UpdateStoreInfo (7-ELEVEN, FamilyMart, OK): a new pickup or return store after a
   * store_closed status. Success is exactly `1|OK`. Idempotent in effect (the same store twice).
   */
  async updateStore(input: UpdateStoreInput): Promise<void> {
    const subType = this.offered(input.subType);
    if (subType !== 'UNIMARTC2C' && subType !== 'FAMIC2C' && subType !== 'OKMARTC2C') {
      throw new RangeError(`UpdateStoreInfo is not available for ${subType}`);
    }
    if (!isStoreIdFor(subType, input.storeId)) throw new RangeError('storeId has the wrong shape for the chain');
    const params = this.codeFields(input);
    params.StoreType = input.store === 'pickup' ? '01' : '02';
    params[input.store === 'pickup' ? 'ReceiverStoreID' : 'ReturnStoreID'] = input.storeId;
    await this.expectOk('/Express/UpdateStoreInfo', signLogistics(params, this.keys), 'UpdateStoreInfo', true);
  }

  /** 7-ELEVEN C2C Express/CancelC2COrder (other chains have no cancel API: just do not ship, §8). */
  async cancelShipment(input: ShipmentCodes): Promise<void> {
    if (this.offered(input.subType) !== 'UNIMARTC2C') throw new RangeError('CancelC2COrder exists for UNIMARTC2C only');
    // Not retried blindly: a second cancel of a cancelled parcel is refused, which would hide the first's success.
    await this.expectOk('/Express/CancelC2COrder', signLogistics(this.codeFields(input), this.keys), 'CancelC2COrder', false);
  }

  // -------------------------------------------------------------------------------------------
  // Labels (§10)

  /**
   * The print form for one shipment's label (a browser form; open it in a new top-level tab,
   * never in an iframe). C2C chains take the drop-off codes; B2C uses printTradeDocument.
   */
  printForm(input: ShipmentCodes): LogisticsForm {
    const subType = this.offered(input.subType);
    const params: Record<string, string> = this.codeFields(input);
    if (subType === 'UNIMART' || subType === 'UNIMARTFREEZE' || subType === 'FAMI' || subType === 'HILIFE') {
      delete params.CVSPaymentNo;
      delete params.CVSValidationNo;
    }
    return { action: `${this.origin}${PRINT_PATH[subType]}`, fields: signLogistics(params, this.keys) };
  }

  // -------------------------------------------------------------------------------------------

  /** MerchantID, AllPayLogisticsID, CVSPaymentNo and (7-ELEVEN C2C) CVSValidationNo. */
  private codeFields(input: ShipmentCodes): Record<string, string> {
    if (!LOGISTICS_ID.test(input.allPayLogisticsId)) throw new RangeError('allPayLogisticsId must be digits');
    if (!/^[A-Za-z0-9]{1,20}$/.test(input.cvsPaymentNo)) throw new RangeError('cvsPaymentNo is malformed');
    const params: Record<string, string> = {
      MerchantID: this.config.merchantId,
      AllPayLogisticsID: input.allPayLogisticsId,
      CVSPaymentNo: input.cvsPaymentNo,
    };
    if (input.subType === 'UNIMARTC2C') {
      if (!/^\d{1,10}$/.test(input.cvsValidationNo ?? '')) throw new RangeError('cvsValidationNo is required for UNIMARTC2C');
      params.CVSValidationNo = input.cvsValidationNo!;
    }
    return params;
  }

  /** Calls an API whose success is exactly `1|OK`. */
  private async expectOk(path: string, params: Record<string, string>, op: string, idempotent: boolean): Promise<void> {
    const body = (await this.postOrRefusal(path, params, op, idempotent)).replace(/[\r\n]+$/, '');
    if (body === '1|OK') return;
    const refusal = refusalOf(body);
    if (refusal !== null) {
      throw new LogisticsRejectedError(classifyRejection(refusal), refusal, op, { allPayLogisticsId: params.AllPayLogisticsID });
    }
    throw new GatewayError('BAD_RESPONSE', `${op} answered neither 1|OK nor 0|`, false, { op, body: body.slice(0, 200) });
  }

  /**
   * POSTs a form. ECPay sends some refusals with HTTP 500 (`0|CheckMacValue驗證錯誤`, §3): a
   * 5xx whose body is a `0|` refusal is returned as the refusal it is, not as "no answer".
   */
  private async postOrRefusal(path: string, params: Record<string, string>, op: string, idempotent: boolean): Promise<string> {
    try {
      return await this.post(path, params, op, idempotent);
    } catch (err) {
      const body = err instanceof GatewayError && err.code === 'HTTP_STATUS' ? err.details.body : undefined;
      if (typeof body === 'string' && err instanceof GatewayError && err.details.status === 500 && refusalOf(body) !== null) {
        return body;
      }
      throw err;
    }
  }
}

/** Status of a 7-ELEVEN C2C store-change notice (§7.5). */
const STORE_CHANGE: Readonly<Record<string, StoreChangeNotification['change']>> = {
  '01': 'closed',
  '02': 'id-updated',
  '03': 'return-store-unknown',
  '04': 'temporarily-closed',
};

function storeChangeOf(f: Record<string, string>): StoreChangeNotification {
  const change = STORE_CHANGE[f.Status ?? ''] ?? 'unknown';
  const status: StatusMapping =
    change === 'id-updated'
      ? { state: 'store_changed', group: 'store_changed', terminal: false }
      : { state: 'store_closed', group: 'store_closed', terminal: false };
  return {
    kind: 'store-change',
    allPayLogisticsId: f.AllPayLogisticsID!,
    store: f.StoreType === '02' ? 'return' : 'pickup',
    change,
    storeId: f.StoreID ?? '',
    status,
    fields: f,
  };
}
