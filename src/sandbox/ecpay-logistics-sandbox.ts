import { randomBytes } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { escapeHtml } from '../html';
import { formatEcpayDate, formatEcpayDateTime } from '../gateways/ecpay/ecpay-client';
import { signLogistics, verifyLogisticsMac } from '../gateways/ecpay-logistics/logistics-mac';
import { PRINT_PATH } from '../gateways/ecpay-logistics/ecpay-logistics-client';
import { checkContactName } from '../gateways/ecpay-logistics/recipient';
import { mapStatus } from '../gateways/ecpay-logistics/status-codes';
import { CHAIN_OF, isC2cSubType, isCvsSubType, type CvsChain, type CvsSubType } from '../gateways/ecpay-logistics/sub-types';
import { autoSubmitPage, digits, formatTwd, listenSandbox, listPage, page, stringFields } from './ecpay-sandbox-pages';
import { FormNotifier, type FormDelivery } from './form-notifier';

/**
 * A local stand-in for ECPay's logistics host (specs/ecpay-logistics.md), for tests and
 * development: the store map (`Express/map`), `Express/Create`, `Helper/QueryLogisticsTradeInfo/V5`,
 * `Express/UpdateStoreInfo`, `Express/CancelC2COrder`, the label print pages, and an index page
 * that moves shipments along their chain's status codes, each step POSTing a signed status
 * notification to the shipment's ServerReplyURL until it answers exactly `1|OK`.
 *
 * It checks what ECPay checks: MD5 CheckMacValue (§3), the account's kind (C2C or B2C) against the
 * sub-type, required fields and their rules (§6.1: name width, mobile, GoodsName symbols, amount
 * 1–20000, CollectionAmount = GoodsAmount for 7-ELEVEN), unique MerchantTradeNo, known open stores,
 * Query's 3-minute TimeStamp (§9). Status codes, their texts and each chain's sequence come from
 * ECPay's logistics_status.xlsx / logistics_history.xlsx (§7.3).
 *
 * Where ECPay's behaviour is not documented the sandbox picks one plausible answer, and says so:
 * - refusal texts other than `ReceiverStoreID Is Null`, `TimeStamp Is Expired` and
 *   `CheckMacValue驗證錯誤` (the last on HTTP 500) are invented, e.g. `MerchantTradeNo重複`;
 * - Query of an unknown shipment answers `0|查無此筆物流訂單`;
 * - store names and addresses are made up; only the store IDs 131386, 896539, 006598, 001779 and
 *   1328 come from ECPay's documents (no Hi-Life stage store is documented);
 * - a closed pickup store is reported with the chain's store-closed code and, for 7-ELEVEN C2C, also
 *   with a store-change notice to LogisticsC2CReplyURL (fields AllPayLogisticsID, StoreType,
 *   Status, StoreID — [U] in the spec); UpdateStoreInfo is then answered `1|OK` and followed by
 *   status 2105 (已申請門市變更);
 * - re-sends follow ECPay's "up to 3 times a day for 3 days" (9 re-sends), on a compressed clock.
 */

export interface EcpayLogisticsSandboxMerchant {
  merchantId: string;
  hashKey: string;
  hashIv: string;
  /** C2C accounts allow the `…C2C` sub-types only, B2C accounts the others (§2). */
  kind: 'C2C' | 'B2C';
}

export interface EcpayLogisticsSandboxOptions {
  merchants: EcpayLogisticsSandboxMerchant[];
  /** 0 (default) picks a free port. */
  port?: number;
  host?: '127.0.0.1';
  logger?: Logger;
  /** Waits between deliveries of one notification; at most 9 are used. */
  notifyRetryDelaysMs?: number[];
  /** Timeout of each notification POST to the shop. */
  notifyTimeoutMs?: number;
  /** Post the creation status (300, Hi-Life 2001) to ServerReplyURL after Express/Create, as ECPay does (§6.2). Default true. */
  notifyOnCreate?: boolean;
  now?: () => Date;
}

export interface SandboxStore {
  chain: CvsChain;
  storeId: string;
  name: string;
  address: string;
  /** '' for 7-ELEVEN (its map returns none). */
  telephone: string;
  /** Outlying island (CVSOutSide=1). */
  outside: boolean;
  closed: boolean;
}

export interface SandboxStatusEvent {
  code: number;
  message: string;
  at: Date;
}

export interface SandboxShipment {
  merchantId: string;
  merchantTradeNo: string;
  allPayLogisticsId: string;
  subType: CvsSubType;
  merchantTradeDate: string;
  goodsAmount: number;
  isCollection: boolean;
  collectionAmount: number;
  goodsName: string;
  senderName: string;
  senderCellPhone: string;
  receiverName: string;
  receiverCellPhone: string;
  receiverEmail: string;
  receiverStoreId: string;
  returnStoreId: string;
  serverReplyUrl: string;
  /** LogisticsC2CReplyURL, when sent. */
  storeChangeUrl: string | null;
  cvsPaymentNo: string;
  cvsValidationNo: string;
  shipmentNo: string;
  createdAt: Date;
  statusCode: number;
  statusMessage: string;
  updatedAt: Date;
  history: SandboxStatusEvent[];
  /** The pickup store closed and no new one was recorded yet. */
  storeClosed: boolean;
  collectionAllocateDate: string;
  collectionAllocateAmount: number | null;
  /** The request as ECPay received it. */
  createFields: Record<string, string>;
}

export interface SandboxLogisticsNotification extends FormDelivery {
  kind: 'status' | 'store-change';
  allPayLogisticsId: string;
  merchantTradeNo: string;
}

export interface SandboxLogisticsRequest {
  method: string;
  path: string;
  status: number;
  at: Date;
}

/**
 * How a shipment moves from the index page (or a test):
 * - next: the chain's next status (dropped off → warehouse → at the store → picked up), or the
 *   next step of a return;
 * - return: the buyer did not collect it (only while it waits at the store, or after its store closed);
 * - store-closed: the pickup store closed before pickup; UpdateStoreInfo then records a new one.
 */
export type AdvanceStep = 'next' | 'return' | 'store-closed';

export interface EcpayLogisticsSandbox {
  /** Origin to use as ECPAY_LOGISTICS_API_BASE_URL. */
  readonly url: string;
  /** Every request to ECPay's own paths (/Express/…, /Helper/…, /helper/…), oldest first (live array). */
  readonly apiRequests: readonly SandboxLogisticsRequest[];
  /** Every notification delivery, oldest first (live array). */
  readonly notifications: readonly SandboxLogisticsNotification[];
  /** The next `times` requests to `path` are answered with this HTTP status and nothing else happens. */
  injectHttpStatus(path: string, status: number, times?: number): void;
  /** The next `times` requests to `path` are handled normally but answered only after `ms`. */
  injectDelay(path: string, ms: number, times?: number): void;
  /**
   * The next `times` requests to `path` are refused as ECPay refuses (HTTP 200, body `0|message`,
   * e.g. UpdateStoreInfo's `0|ReceiverStoreID Is Error`) and nothing else happens.
   */
  injectRefusal(path: string, message: string, times?: number): void;
  /** The stores of a sub-type's chain (its map shows the open ones). */
  stores(subType: CvsSubType): SandboxStore[];
  /** Closes or reopens a store: Express/Create and UpdateStoreInfo refuse a closed one. */
  setStoreClosed(subType: CvsSubType, storeId: string, closed: boolean): void;
  /** Moves a shipment one step; resolves with the first delivery of the status notification it sends. */
  advance(allPayLogisticsId: string, step: AdvanceStep): Promise<SandboxLogisticsNotification>;
  /**
   * Moves a shipment one step without notifying the shop (a notification ECPay never sent or that
   * got lost): only QueryLogisticsTradeInfo tells the new status.
   */
  advanceSilently(allPayLogisticsId: string, step: AdvanceStep): void;
  /** Re-sends the shipment's latest status once (outside the retry schedule). */
  notifyAgain(allPayLogisticsId: string): Promise<SandboxLogisticsNotification>;
  getShipment(ref: { allPayLogisticsId: string } | { merchantTradeNo: string; merchantId?: string }): SandboxShipment | undefined;
  shipments(): SandboxShipment[];
  /** Resolves once no notification is being delivered or waiting for a re-send. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// ECPay's data

/** Re-sends of one notification: up to 3 a day for 3 days (§7.2), compressed for development. */
const DEFAULT_RETRY_DELAYS_MS = [10_000, 30_000, 60_000, 5 * 60_000, 10 * 60_000, 30 * 60_000, 60 * 60_000, 2 * 60 * 60_000, 4 * 60 * 60_000];
const MAX_RESENDS = 9;
const QUERY_TIMESTAMP_WINDOW_S = 180;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Express/Create's RtnMsg for 300 as in the real answers M2/M3 (the status list words it differently). */
const CREATED_MESSAGE = '訂單處理中(已收到訂單資料)';

/** Status texts of logistics_status.xlsx for the codes the sandbox sends. */
const STATUS_TEXT: Readonly<Record<number, string>> = {
  300: '訂單處理中(綠界已收到訂單資料)',
  310: '訂單上傳物流中',
  2001: '訂單傳送超商成功',
  2024: '訂單傳送超商成功',
  2030: '物流中心驗收成功',
  2037: '取件門市關轉，請重選門市',
  2063: '包裹配達取件門市',
  2067: '買家已到店取貨',
  2068: '賣家已到門市寄件',
  2070: '賣家已取退回包裹',
  2072: '包裹已退至原寄件門市',
  2073: '包裹配達取件門市',
  2074: '買家未取包裹，將退回物流中心',
  2104: '門市關轉，請重選門市',
  2105: '已申請門市變更',
  3018: '包裹配達取件門市',
  3019: '包裹已退至原寄件門市',
  3020: '買家未取包裹，將退回物流中心',
  3022: '買家已到店取貨',
  3023: '賣家已取退回包裹',
  3024: '物流中心驗收成功',
  3032: '賣家已到門市寄件',
  7011: '取件門市關轉，請重選門市',
  7101: '取件門市關轉，請重選門市',
  9999: '訂單取消',
};

/** Each sub-type's statuses after creation, to pickup (logistics_history.xlsx, spec §7.3). */
const FORWARD: Readonly<Record<CvsSubType, readonly number[]>> = {
  UNIMARTC2C: [2068, 2030, 2073, 2067],
  FAMIC2C: [3032, 3024, 3018, 3022],
  HILIFEC2C: [3032, 3024, 3018, 3022],
  OKMARTC2C: [3032, 2030, 2073, 3022],
  UNIMART: [310, 2024, 2030, 2063, 2067],
  UNIMARTFREEZE: [310, 2024, 2030, 2063, 2067],
  FAMI: [310, 3024, 3018, 3022],
  HILIFE: [3024, 3018, 3022],
};

/** The way back when the buyer does not come: unclaimed → back at the sender's store → collected. */
const RETURN: Readonly<Record<CvsChain, readonly number[]>> = {
  UNIMART: [2074, 2072, 2070],
  OKMART: [2074, 2072, 3023],
  FAMI: [3020, 3019, 3023],
  HILIFE: [3020, 3019, 3023],
};

const STORE_CLOSED_CODE: Readonly<Record<CvsSubType, number>> = {
  UNIMARTC2C: 2104,
  FAMIC2C: 7011,
  HILIFEC2C: 7011,
  OKMARTC2C: 7101,
  UNIMART: 2037,
  UNIMARTFREEZE: 2037,
  FAMI: 7011,
  HILIFE: 7011,
};

const STORE_CHANGED_CODE = 2105;
const CANCELLED_CODE = 9999;

/** ECPay's list price per C2C parcel (§6.3, display only); B2C alike for the sandbox. */
const HANDLING_CHARGE: Readonly<Record<CvsChain, number>> = { UNIMART: 65, FAMI: 65, HILIFE: 55, OKMART: 65 };

/** Made-up names and addresses; the IDs 131386, 896539, 006598, 001779, 1328 are ECPay's stage stores. */
const STORES: ReadonlyArray<Omit<SandboxStore, 'closed'>> = [
  { chain: 'UNIMART', storeId: '131386', name: '鑫忠孝門市', address: '臺北市中正區忠孝西路一段50號1樓', telephone: '', outside: false },
  { chain: 'UNIMART', storeId: '896539', name: '港墘門市', address: '臺北市內湖區內湖路一段300號', telephone: '', outside: false },
  { chain: 'UNIMART', storeId: '244963', name: '逢甲門市', address: '臺中市西屯區文華路100號', telephone: '', outside: false },
  { chain: 'UNIMART', storeId: '991182', name: '馬公門市', address: '澎湖縣馬公市中正路20號', telephone: '', outside: true },
  { chain: 'FAMI', storeId: '006598', name: '全家台北站前店', address: '臺北市中正區館前路8號', telephone: '02-23710001', outside: false },
  { chain: 'FAMI', storeId: '001779', name: '全家新竹竹北店', address: '新竹縣竹北市光明六路10號', telephone: '03-5550002', outside: false },
  { chain: 'FAMI', storeId: '018540', name: '全家金門金城店', address: '金門縣金城鎮民生路5號', telephone: '082-320003', outside: true },
  { chain: 'HILIFE', storeId: '3305', name: '萊爾富台北重慶店', address: '臺北市大同區重慶北路一段30號', telephone: '02-25550004', outside: false },
  { chain: 'HILIFE', storeId: '2751', name: '萊爾富高雄中正店', address: '高雄市苓雅區中正一路88號', telephone: '07-7210005', outside: false },
  { chain: 'OKMART', storeId: '1328', name: 'OK台北南京店', address: '臺北市中山區南京東路二段66號', telephone: '02-25110006', outside: false },
  { chain: 'OKMART', storeId: '1046', name: 'OK台南中華店', address: '臺南市東區中華東路一段120號', telephone: '06-2350007', outside: false },
];

const CHAIN_LABEL: Readonly<Record<CvsChain, string>> = { UNIMART: '7-ELEVEN', FAMI: '全家', HILIFE: '萊爾富', OKMART: 'OK超商' };

/** The 18 characters GoodsName must not contain (§6.1). */
const GOODS_NAME_FORBIDDEN = /[\^'`!@#%&*+\\"<>|_[\]]/;
const ECPAY_DATE_TIME = /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2}$/;
const isUrl = (s: string | undefined) => s !== undefined && s.length <= 200 && /^https?:\/\/\S+$/.test(s);

/** ECPay's raw `key=value&…` answer: values unescaped, fields sorted by name (§3, M2). */
function rawBody(fields: Record<string, string>, macLast: boolean): string {
  const names = Object.keys(fields)
    .filter((n) => !macLast || n !== 'CheckMacValue')
    .sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0));
  if (macLast) names.push('CheckMacValue');
  return names.map((n) => `${n}=${fields[n]}`).join('&');
}

/** A C2C drop-off code in each chain's shape (§6.2): 7-ELEVEN 8 characters + a 4-digit check code. */
function dropOffCodes(subType: CvsSubType): { cvsPaymentNo: string; cvsValidationNo: string; shipmentNo: string } {
  switch (subType) {
    case 'UNIMARTC2C': {
      const payment = `${'CFG'[Number(digits(1)) % 3]}${digits(7)}`;
      const validation = digits(4);
      return { cvsPaymentNo: payment, cvsValidationNo: validation, shipmentNo: `${payment}${validation}` };
    }
    case 'FAMIC2C':
      return { cvsPaymentNo: `0${digits(10)}`, cvsValidationNo: '', shipmentNo: '' };
    case 'HILIFEC2C':
      return { cvsPaymentNo: `${digits(3)}D${digits(8)}`, cvsValidationNo: '', shipmentNo: '' };
    case 'OKMARTC2C':
      return { cvsPaymentNo: `W${digits(10)}`, cvsValidationNo: '', shipmentNo: '' };
    default:
      // B2C: no drop-off code; the shipment number comes from Query (§6.2, M3).
      return { cvsPaymentNo: '', cvsValidationNo: '', shipmentNo: digits(11) };
  }
}

function snapshot(s: SandboxShipment): SandboxShipment {
  return { ...s, history: s.history.map((h) => ({ ...h })), createFields: { ...s.createFields } };
}

// ---------------------------------------------------------------------------------------------

export async function startEcpayLogisticsSandbox(opts: EcpayLogisticsSandboxOptions): Promise<EcpayLogisticsSandbox> {
  const merchants = new Map(opts.merchants.map((m) => [m.merchantId, m]));
  const host = opts.host ?? '127.0.0.1';
  const now = opts.now ?? (() => new Date());
  const log = opts.logger;
  const notifyOnCreate = opts.notifyOnCreate ?? true;
  const notifier = new FormNotifier({
    retryDelaysMs: (opts.notifyRetryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS).slice(0, MAX_RESENDS),
    timeoutMs: opts.notifyTimeoutMs ?? 10000,
    now,
  });

  const stores = STORES.map((s) => ({ ...s, closed: false }));
  /** By AllPayLogisticsID. */
  const shipments = new Map<string, SandboxShipment>();
  /** `${merchantId}\n${merchantTradeNo}` → AllPayLogisticsID; never deleted, so a MerchantTradeNo is used once. */
  const tradeIndex = new Map<string, string>();
  /** Map sessions by their random id: what the shop posted to Express/map. */
  const mapSessions = new Map<string, Record<string, string>>();
  const notifications: SandboxLogisticsNotification[] = [];
  /** Where a shipment is on its route: 'forward' or 'return', and the index of its last status there (-1: just created). */
  const routes = new Map<string, { route: 'forward' | 'return'; pos: number }>();
  let nextLogisticsId = 1_700_000 + Number(digits(5));

  const tradeKey = (merchantId: string, merchantTradeNo: string) => `${merchantId}\n${merchantTradeNo}`;
  const keysOf = (merchantId: string) => {
    const m = merchants.get(merchantId)!;
    return { hashKey: m.hashKey, hashIv: m.hashIv };
  };
  const storeOf = (subType: CvsSubType, storeId: string) => stores.find((s) => s.chain === CHAIN_OF[subType] && s.storeId === storeId);
  const allowed = (merchantId: string, subType: string): subType is CvsSubType =>
    isCvsSubType(subType) && isC2cSubType(subType) === (merchants.get(merchantId)!.kind === 'C2C');

  function mustFind(allPayLogisticsId: string): SandboxShipment {
    const s = shipments.get(allPayLogisticsId);
    if (!s) throw new Error(`ecpay logistics sandbox: no shipment ${allPayLogisticsId}`);
    return s;
  }

  // ------------------------------------------------------------------------------------------
  // Notifications

  function record(kind: SandboxLogisticsNotification['kind'], s: SandboxShipment, d: FormDelivery): SandboxLogisticsNotification {
    const rec: SandboxLogisticsNotification = { kind, allPayLogisticsId: s.allPayLogisticsId, merchantTradeNo: s.merchantTradeNo, ...d };
    notifications.push(rec);
    log?.info({ kind, allPayLogisticsId: s.allPayLogisticsId, attempt: d.attempt, status: d.status, error: d.error }, 'ecpay logistics sandbox notification delivered');
    return rec;
  }

  /** The status notification of §7.1, for the shipment's current status. */
  function statusFields(s: SandboxShipment): Record<string, string> {
    return signLogistics(
      {
        MerchantID: s.merchantId,
        MerchantTradeNo: s.merchantTradeNo,
        RtnCode: String(s.statusCode),
        RtnMsg: s.statusMessage,
        AllPayLogisticsID: s.allPayLogisticsId,
        LogisticsType: 'CVS',
        LogisticsSubType: s.subType,
        GoodsAmount: String(s.goodsAmount),
        UpdateStatusDate: formatEcpayDateTime(s.updatedAt),
        ReceiverName: s.receiverName,
        ReceiverPhone: '',
        ReceiverCellPhone: s.receiverCellPhone,
        ReceiverEmail: s.receiverEmail,
        ReceiverAddress: '',
        CVSPaymentNo: s.cvsPaymentNo,
        CVSValidationNo: s.cvsValidationNo,
        BookingNote: '',
      },
      keysOf(s.merchantId),
    );
  }

  /** Records a status and notifies it, re-sending until `1|OK`; every re-send carries the same fields. */
  /** While set, statuses are recorded but not notified (advanceSilently). */
  let muted = false;

  function setStatus(s: SandboxShipment, code: number, message = STATUS_TEXT[code] ?? ''): Promise<SandboxLogisticsNotification> {
    const at = now();
    s.statusCode = code;
    s.statusMessage = message;
    s.updatedAt = at;
    s.history.push({ code, message, at });
    if (mapStatus(s.subType, code).state === 'picked_up' && s.isCollection) {
      // COD payout, net of the shipping and 0.75 % (min NT$3) collection fees (§6.3, §12).
      s.collectionAllocateAmount = s.collectionAmount - HANDLING_CHARGE[CHAIN_OF[s.subType]] - Math.max(3, Math.round(s.collectionAmount * 0.0075));
      s.collectionAllocateDate = formatEcpayDate(new Date(at.getTime() + 7 * DAY_MS));
    }
    log?.info({ allPayLogisticsId: s.allPayLogisticsId, code, muted }, 'ecpay logistics sandbox status');
    if (muted) return new Promise<SandboxLogisticsNotification>(() => undefined);
    const fields = statusFields(s);
    return notifier.send(s.serverReplyUrl, () => fields, (d) => record('status', s, d));
  }

  /** One delivery of the current status, outside any retry schedule (the 重送通知 button). */
  function notifyOnce(s: SandboxShipment): Promise<SandboxLogisticsNotification> {
    return notifier.track(notifier.deliver(s.serverReplyUrl, statusFields(s), 1).then((d) => record('status', s, d)));
  }

  /** 7-ELEVEN C2C store-change notice to LogisticsC2CReplyURL (§7.5). */
  function sendStoreChange(s: SandboxShipment): Promise<SandboxLogisticsNotification> {
    const fields = signLogistics(
      { AllPayLogisticsID: s.allPayLogisticsId, StoreType: '01', Status: '01', StoreID: s.receiverStoreId },
      keysOf(s.merchantId),
    );
    return notifier.send(s.storeChangeUrl!, () => fields, (d) => record('store-change', s, d));
  }

  // ------------------------------------------------------------------------------------------
  // Moving shipments

  function routeOf(s: SandboxShipment) {
    return routes.get(s.allPayLogisticsId)!;
  }

  const atStoreIndex = (subType: CvsSubType) => FORWARD[subType].findIndex((c) => mapStatus(subType, c).state === 'arrived_at_store');

  function advance(s: SandboxShipment, step: AdvanceStep): Promise<SandboxLogisticsNotification> {
    const r = routeOf(s);
    const state = mapStatus(s.subType, s.statusCode).state;
    if (state === 'picked_up' || state === 'cancelled' || (r.route === 'return' && r.pos === RETURN[CHAIN_OF[s.subType]].length - 1)) {
      throw new Error(`shipment ${s.allPayLogisticsId} is finished`);
    }
    if (step === 'next') {
      if (s.storeClosed) throw new Error(`shipment ${s.allPayLogisticsId} waits for a new store (UpdateStoreInfo) or a return`);
      const path = r.route === 'forward' ? FORWARD[s.subType] : RETURN[CHAIN_OF[s.subType]];
      r.pos += 1;
      return setStatus(s, path[r.pos]!);
    }
    if (step === 'return') {
      if (r.route !== 'forward' || (state !== 'arrived_at_store' && !s.storeClosed)) {
        throw new Error(`shipment ${s.allPayLogisticsId} can be returned only from the pickup store`);
      }
      r.route = 'return';
      r.pos = 0;
      s.storeClosed = false;
      return setStatus(s, RETURN[CHAIN_OF[s.subType]][0]!);
    }
    if (r.route !== 'forward' || s.storeClosed) throw new Error(`shipment ${s.allPayLogisticsId} is not on its way to a store`);
    s.storeClosed = true;
    const first = setStatus(s, STORE_CLOSED_CODE[s.subType]);
    if (s.subType === 'UNIMARTC2C' && s.storeChangeUrl) void sendStoreChange(s);
    return first;
  }

  // ------------------------------------------------------------------------------------------
  // HTTP

  const app = express();
  app.disable('x-powered-by');
  const apiRequests: SandboxLogisticsRequest[] = [];
  const injectedStatus = new Map<string, { status: number; times: number }>();
  const injectedDelay = new Map<string, { ms: number; times: number }>();
  const injectedRefusal = new Map<string, { message: string; times: number }>();
  app.use((req: Request, res: Response, next) => {
    if (!/^\/(?:Express|Helper|helper)\//.test(req.path)) return next();
    const rec: SandboxLogisticsRequest = { method: req.method, path: req.path, status: 0, at: now() };
    apiRequests.push(rec);
    res.on('finish', () => {
      rec.status = res.statusCode;
    });
    const inj = injectedStatus.get(req.path);
    if (inj && inj.times > 0) {
      inj.times -= 1;
      return res.status(inj.status).type('text/html; charset=utf-8').send(inj.status === 403 ? 'Forbidden' : `HTTP ${inj.status}`);
    }
    const refusal = injectedRefusal.get(req.path);
    if (refusal && refusal.times > 0) {
      refusal.times -= 1;
      return res.status(200).type('text/html; charset=utf-8').send(`0|${refusal.message}`);
    }
    const delay = injectedDelay.get(req.path);
    if (delay && delay.times > 0) {
      delay.times -= 1;
      // The request is served; only the answer is late (a timeout then leaves the outcome unknown).
      const send = res.send.bind(res);
      res.send = ((body: unknown) => {
        setTimeout(() => send(body), delay.ms);
        return res;
      }) as typeof res.send;
    }
    return next();
  });
  app.use(express.urlencoded({ extended: false, limit: '100kb', parameterLimit: 200 }));

  const sendHtml = (res: Response, html: string, status = 200) => res.status(status).type('text/html; charset=utf-8').send(html);
  const sendText = (res: Response, text: string, status = 200) => res.status(status).type('text/html; charset=utf-8').send(text);
  const mapError = (res: Response, message: string) =>
    sendHtml(res, page('綠界科技 - 電子地圖', `  <h1>電子地圖</h1>\n  <p id="message">${escapeHtml(message)}</p>`), 400);

  /** Parses a signed form: our merchant and a verifying MD5 MAC; else the refusal to send. */
  function signedForm(req: Request): { f: Record<string, string> } | { refusal: string; status: number } {
    const f = stringFields(req.body ?? {});
    if (!f || !f.MerchantID || !f.CheckMacValue) return { refusal: '0|Parameter Error', status: 200 };
    if (!merchants.has(f.MerchantID)) return { refusal: '0|MerchantID Error', status: 200 };
    if (!verifyLogisticsMac(f, keysOf(f.MerchantID))) return { refusal: '0|CheckMacValue驗證錯誤', status: 500 };
    return { f };
  }

  /** A route of a signed API: refusals are answered here; the handler gets the verified fields. */
  function signedPost(paths: string | string[], handler: (f: Record<string, string>, req: Request, res: Response) => unknown): void {
    app.post(paths, (req: Request, res: Response) => {
      const signed = signedForm(req);
      if ('refusal' in signed) return sendText(res, signed.refusal, signed.status);
      return handler(signed.f, req, res);
    });
  }

  // Store map (§5) ----------------------------------------------------------------------------

  app.post('/Express/map', (req: Request, res: Response) => {
    const f = stringFields(req.body ?? {});
    if (!f) return mapError(res, 'Parameter Error.');
    const merchant = f.MerchantID ? merchants.get(f.MerchantID) : undefined;
    if (!merchant) return mapError(res, '找不到廠商編號。');
    // The map request needs no MAC (§5.2); one that is sent must verify.
    if (f.CheckMacValue !== undefined && !verifyLogisticsMac(f, keysOf(merchant.merchantId))) return mapError(res, 'CheckMacValue Error.');
    if (!/^[A-Za-z0-9]{1,20}$/.test(f.MerchantTradeNo ?? '')) return mapError(res, 'MerchantTradeNo Error.');
    if (f.LogisticsType !== 'CVS') return mapError(res, 'LogisticsType Error.');
    // A sub-type the account does not have: ECPay's page says it has no key for it (§2).
    if (!allowed(merchant.merchantId, f.LogisticsSubType ?? '')) return mapError(res, '找不到加密金鑰，請確認是否有申請開通此物流方式。');
    if (f.IsCollection !== 'Y' && f.IsCollection !== 'N') return mapError(res, 'IsCollection Error.');
    if (!isUrl(f.ServerReplyURL)) return mapError(res, 'ServerReplyURL Error.');
    if ((f.ExtraData ?? '').length > 20) return mapError(res, 'ExtraData Error.');
    if (f.Device !== undefined && f.Device !== '0' && f.Device !== '1') return mapError(res, 'Device Error.');
    const subType = f.LogisticsSubType as CvsSubType;
    const session = randomBytes(12).toString('hex');
    mapSessions.set(session, f);
    const rows = stores
      .filter((s) => s.chain === CHAIN_OF[subType] && !s.closed)
      .map(
        (s) => `    <li>
      <form class="store" method="post" action="/Express/map/choose">
        <input type="hidden" name="session" value="${escapeHtml(session)}">
        <input type="hidden" name="store" value="${escapeHtml(s.storeId)}">
        <strong>${escapeHtml(s.name)}</strong>（店號 ${escapeHtml(s.storeId)}）${s.outside ? '<small>離島</small>' : ''}<br>
        <span>${escapeHtml(s.address)}</span><br>
        <button type="submit">選擇此門市</button>
      </form>
    </li>`,
      )
      .join('\n');
    return sendHtml(
      res,
      page(
        `${CHAIN_LABEL[CHAIN_OF[subType]]} 門市地圖`,
        `  <h1>${escapeHtml(CHAIN_LABEL[CHAIN_OF[subType]])} 選擇取貨門市</h1>
  <p>${f.IsCollection === 'Y' ? '取貨付款' : '純取貨（不付款）'}${f.Device === '1' ? '・手機版' : ''}</p>
  <ul id="stores">
${rows}
  </ul>`,
      ),
    );
  });

  app.post('/Express/map/choose', (req: Request, res: Response) => {
    const f = stringFields(req.body ?? {});
    const session = f ? mapSessions.get(f.session ?? '') : undefined;
    if (!f || !session) return mapError(res, '地圖連線已逾時，請重新選擇。');
    const subType = session.LogisticsSubType as CvsSubType;
    const store = storeOf(subType, f.store ?? '');
    if (!store || store.closed) return mapError(res, '查無此門市。');
    mapSessions.delete(f.session!);
    // The buyer's browser carries the choice to the shop (§5.1 step 3): unsigned (§5.3).
    const reply: Record<string, string> = {
      MerchantID: session.MerchantID!,
      MerchantTradeNo: session.MerchantTradeNo!,
      LogisticsSubType: subType,
      CVSStoreID: store.storeId,
      CVSStoreName: store.name,
      CVSAddress: store.address,
      CVSTelephone: store.telephone,
      CVSOutSide: store.outside ? '1' : '0',
      ExtraData: session.ExtraData ?? '',
    };
    return sendHtml(res, autoSubmitPage(session.ServerReplyURL!, reply, '門市已選擇，正在返回商店…'));
  });

  // Express/Create (§6) ------------------------------------------------------------------------

  /** The first problem ECPay would refuse a create for, or null. */
  function createProblem(f: Record<string, string>): string | null {
    if (f.MerchantTradeNo && !/^[A-Za-z0-9]{1,20}$/.test(f.MerchantTradeNo)) return 'MerchantTradeNo Error';
    if (!ECPAY_DATE_TIME.test(f.MerchantTradeDate ?? '')) return 'MerchantTradeDate Error';
    if (f.LogisticsType !== 'CVS') return 'LogisticsType Error';
    if (!allowed(f.MerchantID!, f.LogisticsSubType ?? '')) return 'LogisticsSubType Error';
    const subType = f.LogisticsSubType as CvsSubType;
    if (!/^[1-9]\d{0,4}$/.test(f.GoodsAmount ?? '') || Number(f.GoodsAmount) > 20000) return 'GoodsAmount Error';
    const collection = f.IsCollection ?? 'N';
    if (collection !== 'Y' && collection !== 'N') return 'IsCollection Error';
    if (collection === 'Y') {
      if (!/^[1-9]\d{0,4}$/.test(f.CollectionAmount ?? '') || Number(f.CollectionAmount) > 20000) return 'CollectionAmount Error';
      if (CHAIN_OF[subType] === 'UNIMART' && f.CollectionAmount !== f.GoodsAmount) return 'CollectionAmount must equal GoodsAmount';
    }
    const needsGoodsName = subType === 'UNIMARTC2C' || subType === 'HILIFEC2C' || subType === 'OKMARTC2C';
    if (needsGoodsName && !f.GoodsName) return 'GoodsName Is Null';
    if (f.GoodsName && ([...f.GoodsName].length > 50 || GOODS_NAME_FORBIDDEN.test(f.GoodsName))) return 'GoodsName Error';
    for (const n of ['SenderName', 'ReceiverName'] as const) {
      const c = checkContactName(f[n] ?? '');
      if (!c.ok || c.value !== f[n]) return `${n} Error`;
    }
    if (needsGoodsName && !f.SenderCellPhone) return 'SenderCellPhone Is Null';
    for (const n of ['SenderCellPhone', 'ReceiverCellPhone'] as const) {
      if (f[n] && !/^09\d{8}$/.test(f[n]!)) return `${n} Error`;
    }
    if (!f.ReceiverCellPhone && !f.ReceiverPhone) return 'ReceiverCellPhone Is Null';
    if ((f.ReceiverEmail ?? '').length > 50) return 'ReceiverEmail Error';
    if (!isUrl(f.ServerReplyURL)) return 'ServerReplyURL Error';
    if (f.LogisticsC2CReplyURL !== undefined && !isUrl(f.LogisticsC2CReplyURL)) return 'LogisticsC2CReplyURL Error';
    if (!f.ReceiverStoreID) return 'ReceiverStoreID Is Null';
    const store = storeOf(subType, f.ReceiverStoreID);
    if (!store) return 'ReceiverStoreID Is Error';
    if (store.closed) return 'ReceiverStoreID 門市已關轉';
    if (f.ReturnStoreID && !storeOf(subType, f.ReturnStoreID)) return 'ReturnStoreID Is Error';
    return null;
  }

  signedPost('/Express/Create', (f, _req, res) => {
    const problem = createProblem(f);
    if (problem) return sendText(res, `0|${problem}`);
    // ECPay makes up a MerchantTradeNo when none is sent (§6.1).
    const merchantTradeNo = f.MerchantTradeNo || `ECPAY${digits(12)}`;
    const key = tradeKey(f.MerchantID!, merchantTradeNo);
    if (tradeIndex.has(key)) return sendText(res, '0|MerchantTradeNo重複');
    const subType = f.LogisticsSubType as CvsSubType;
    const at = now();
    const allPayLogisticsId = String(nextLogisticsId++);
    const createCode = CHAIN_OF[subType] === 'HILIFE' ? 2001 : 300;
    const s: SandboxShipment = {
      merchantId: f.MerchantID!,
      merchantTradeNo,
      allPayLogisticsId,
      subType,
      merchantTradeDate: f.MerchantTradeDate!,
      goodsAmount: Number(f.GoodsAmount),
      isCollection: f.IsCollection === 'Y',
      collectionAmount: f.IsCollection === 'Y' ? Number(f.CollectionAmount) : 0,
      goodsName: f.GoodsName ?? '',
      senderName: f.SenderName!,
      senderCellPhone: f.SenderCellPhone ?? '',
      receiverName: f.ReceiverName!,
      receiverCellPhone: f.ReceiverCellPhone ?? '',
      receiverEmail: f.ReceiverEmail ?? '',
      receiverStoreId: f.ReceiverStoreID!,
      returnStoreId: f.ReturnStoreID ?? '',
      serverReplyUrl: f.ServerReplyURL!,
      storeChangeUrl: f.LogisticsC2CReplyURL ?? null,
      ...dropOffCodes(subType),
      createdAt: at,
      statusCode: createCode,
      statusMessage: createCode === 300 ? CREATED_MESSAGE : STATUS_TEXT[createCode]!,
      updatedAt: at,
      history: [{ code: createCode, message: createCode === 300 ? CREATED_MESSAGE : STATUS_TEXT[createCode]!, at }],
      storeClosed: false,
      collectionAllocateDate: '',
      collectionAllocateAmount: null,
      createFields: { ...f },
    };
    shipments.set(allPayLogisticsId, s);
    tradeIndex.set(key, allPayLogisticsId);
    routes.set(allPayLogisticsId, { route: 'forward', pos: -1 });
    log?.info({ merchantTradeNo, allPayLogisticsId, subType }, 'ecpay logistics sandbox shipment created');
    const answer = signLogistics(
      {
        AllPayLogisticsID: allPayLogisticsId,
        BookingNote: '',
        CVSPaymentNo: s.cvsPaymentNo,
        CVSValidationNo: s.cvsValidationNo,
        GoodsAmount: String(s.goodsAmount),
        LogisticsSubType: subType,
        LogisticsType: 'CVS',
        MerchantID: s.merchantId,
        MerchantTradeNo: merchantTradeNo,
        ReceiverAddress: '',
        ReceiverCellPhone: s.receiverCellPhone,
        ReceiverEmail: s.receiverEmail,
        ReceiverName: s.receiverName,
        ReceiverPhone: f.ReceiverPhone ?? '',
        RtnCode: String(createCode),
        RtnMsg: s.statusMessage,
        UpdateStatusDate: formatEcpayDateTime(at),
      },
      keysOf(s.merchantId),
    );
    if (notifyOnCreate) {
      // The creation status follows as a notification, after the answer (§6.2).
      const fields = statusFields(s);
      res.on('finish', () => void notifier.send(s.serverReplyUrl, () => fields, (d) => record('status', s, d)));
    }
    return sendText(res, `1|${rawBody(answer, false)}`);
  });

  // Query (§9) ------------------------------------------------------------------------------

  signedPost('/Helper/QueryLogisticsTradeInfo/V5', (f, _req, res) => {
    if (!/^\d+$/.test(f.TimeStamp ?? '') || Math.abs(now().getTime() / 1000 - Number(f.TimeStamp)) > QUERY_TIMESTAMP_WINDOW_S) {
      return sendText(res, '0|TimeStamp Is Expired');
    }
    let s: SandboxShipment | undefined;
    if (f.AllPayLogisticsID) s = shipments.get(f.AllPayLogisticsID);
    else if (f.MerchantTradeNo) s = shipments.get(tradeIndex.get(tradeKey(f.MerchantID!, f.MerchantTradeNo)) ?? '');
    else return sendText(res, '0|AllPayLogisticsID Is Null');
    if (!s || s.merchantId !== f.MerchantID) return sendText(res, '0|查無此筆物流訂單');
    const fee = s.isCollection ? Math.max(3, Math.round(s.collectionAmount * 0.0075)) : 0;
    const answer = signLogistics(
      {
        AllPayLogisticsID: s.allPayLogisticsId,
        BookingNote: '',
        CollectionAllocateAmount: s.collectionAllocateAmount === null ? '' : String(s.collectionAllocateAmount),
        CollectionAllocateDate: s.collectionAllocateDate,
        CollectionAmount: String(s.collectionAmount),
        CollectionChargeFee: String(fee),
        CVSPaymentNo: s.cvsPaymentNo,
        CVSValidationNo: s.cvsValidationNo,
        GoodsAmount: String(s.goodsAmount),
        GoodsName: s.goodsName,
        HandlingCharge: String(HANDLING_CHARGE[CHAIN_OF[s.subType]]),
        LogisticsStatus: String(s.statusCode),
        // Type and sub-type in one value, as in the real answer Q1.
        LogisticsType: `CVS_${s.subType}`,
        MerchantID: s.merchantId,
        MerchantTradeNo: s.merchantTradeNo,
        ShipmentNo: s.shipmentNo,
        TradeDate: formatEcpayDateTime(s.createdAt),
      },
      keysOf(s.merchantId),
    );
    return sendText(res, rawBody(answer, true));
  });

  // Store changes and cancellation (§8) ------------------------------------------------------

  /** The shipment a signed C2C request names, when its drop-off codes match; else the refusal. */
  function c2cShipment(f: Record<string, string>): SandboxShipment | string {
    const s = shipments.get(f.AllPayLogisticsID ?? '');
    if (!s || s.merchantId !== f.MerchantID) return '0|查無此筆物流訂單';
    if (f.CVSPaymentNo !== s.cvsPaymentNo) return '0|CVSPaymentNo Error';
    if (s.subType === 'UNIMARTC2C' && f.CVSValidationNo !== s.cvsValidationNo) return '0|CVSValidationNo Error';
    return s;
  }

  signedPost('/Express/UpdateStoreInfo', (f, _req, res) => {
    const s = c2cShipment(f);
    if (typeof s === 'string') return sendText(res, s);
    if (s.subType !== 'UNIMARTC2C' && s.subType !== 'FAMIC2C' && s.subType !== 'OKMARTC2C') return sendText(res, '0|LogisticsSubType Error');
    if (f.StoreType !== '01' && f.StoreType !== '02') return sendText(res, '0|StoreType Error');
    const pickup = f.StoreType === '01';
    const storeId = pickup ? f.ReceiverStoreID : f.ReturnStoreID;
    if (!storeId) return sendText(res, `0|${pickup ? 'ReceiverStoreID' : 'ReturnStoreID'} Is Null`);
    const store = storeOf(s.subType, storeId);
    if (!store || store.closed) return sendText(res, `0|${pickup ? 'ReceiverStoreID' : 'ReturnStoreID'} Is Error`);
    if (pickup && !s.storeClosed) return sendText(res, '0|此物流訂單狀態不可變更取件門市');
    if (pickup) {
      s.receiverStoreId = storeId;
      s.storeClosed = false;
      const r = routeOf(s);
      // The parcel goes (back) to the warehouse and on to the new store.
      r.pos = Math.min(r.pos, atStoreIndex(s.subType) - 1);
    } else {
      s.returnStoreId = storeId;
    }
    // ECPay has taken the store whether or not the caller waits for the answer (a timeout): the
    // status follows once the answer is sent, or the caller has hung up.
    let told = false;
    const tell = () => {
      if (told) return;
      told = true;
      void setStatus(s, STORE_CHANGED_CODE);
    };
    res.on('finish', tell);
    res.on('close', tell);
    return sendText(res, '1|OK');
  });

  signedPost('/Express/CancelC2COrder', (f, _req, res) => {
    const s = c2cShipment(f);
    if (typeof s === 'string') return sendText(res, s);
    if (s.subType !== 'UNIMARTC2C') return sendText(res, '0|LogisticsSubType Error');
    if (mapStatus(s.subType, s.statusCode).state !== 'created') return sendText(res, '0|此物流訂單已寄件，無法取消');
    res.on('finish', () => void setStatus(s, CANCELLED_CODE));
    return sendText(res, '1|OK');
  });

  // Labels (§10) ----------------------------------------------------------------------------

  signedPost(
    [...new Set(Object.values(PRINT_PATH))],
    (f, req, res) => {
      const b2c = req.path === '/helper/printTradeDocument';
      const s = b2c ? shipments.get(f.AllPayLogisticsID ?? '') : c2cShipment(f);
      if (typeof s === 'string' || !s || s.merchantId !== f.MerchantID) return sendText(res, typeof s === 'string' ? s : '0|查無此筆物流訂單');
      if (PRINT_PATH[s.subType] !== req.path) return sendText(res, '0|LogisticsSubType Error');
      const store = storeOf(s.subType, s.receiverStoreId);
      return sendHtml(
        res,
        page(
          '綠界科技 - 寄件單',
          `  <h1>${escapeHtml(CHAIN_LABEL[CHAIN_OF[s.subType]])} 寄件單（模擬，僅供預覽）</h1>
  <dl>
    <dt>寄件編號</dt><dd id="payment-no">${escapeHtml(s.cvsPaymentNo || s.shipmentNo)}</dd>
    ${s.cvsValidationNo ? `<dt>驗證碼</dt><dd id="validation-no">${escapeHtml(s.cvsValidationNo)}</dd>` : ''}
    <dt>取件門市</dt><dd>${escapeHtml(store ? `${store.name}（${store.storeId}）` : s.receiverStoreId)}</dd>
    <dt>收件人</dt><dd>${escapeHtml(s.receiverName)}</dd>
    <dt>寄件人</dt><dd>${escapeHtml(s.senderName)}</dd>
    <dt>商品</dt><dd>${escapeHtml(s.goodsName)}</dd>
    <dt>代收金額</dt><dd>${escapeHtml(s.isCollection ? formatTwd(s.collectionAmount) : '不代收')}</dd>
  </dl>`,
        ),
      );
    },
  );

  // Index --------------------------------------------------------------------------------------

  app.post('/sandbox/shipments/:id/:step', async (req: Request, res: Response) => {
    const s = shipments.get(String(req.params.id));
    const step = String(req.params.step);
    if (!s || !['next', 'return', 'store-closed', 'notify'].includes(step)) {
      return sendHtml(res, page('綠界科技 - 物流訂單', '  <p id="message">查無此筆物流訂單。</p>'), 404);
    }
    try {
      if (step === 'notify') await notifyOnce(s);
      else await advance(s, step as AdvanceStep);
    } catch (err) {
      return sendHtml(res, page('綠界科技 - 物流訂單', `  <p id="message">${escapeHtml(err instanceof Error ? err.message : String(err))}</p>\n  <p><a href="/">返回列表</a></p>`), 409);
    }
    return res.redirect(303, '/');
  });

  app.get('/', (_req: Request, res: Response) => {
    const rows = [...shipments.values()]
      .reverse()
      .map((s) => {
        const r = routeOf(s);
        const state = mapStatus(s.subType, s.statusCode).state;
        const finished = state === 'picked_up' || state === 'cancelled' || (r.route === 'return' && r.pos === RETURN[CHAIN_OF[s.subType]].length - 1);
        const path = r.route === 'forward' ? FORWARD[s.subType] : RETURN[CHAIN_OF[s.subType]];
        const nextCode = path[r.pos + 1];
        const btn = (step: string, label: string, cls = '') =>
          `<form class="inline" method="post" action="/sandbox/shipments/${escapeHtml(s.allPayLogisticsId)}/${step}">` +
          `<button type="submit"${cls ? ` class="${cls}"` : ''}>${escapeHtml(label)}</button></form>`;
        const buttons = [
          !finished && !s.storeClosed && nextCode !== undefined ? btn('next', `→ ${STATUS_TEXT[nextCode] ?? nextCode}`) : '',
          !finished && r.route === 'forward' && (state === 'arrived_at_store' || s.storeClosed) ? btn('return', '買家未取，退回', 'secondary') : '',
          !finished && r.route === 'forward' && !s.storeClosed ? btn('store-closed', '取件門市關轉', 'secondary') : '',
          btn('notify', '重送通知', 'secondary'),
        ].join('');
        const store = storeOf(s.subType, s.receiverStoreId);
        const code = s.subType === 'UNIMARTC2C' ? `${s.cvsPaymentNo} / ${s.cvsValidationNo}` : s.cvsPaymentNo || s.shipmentNo;
        return `    <tr>
      <td>${escapeHtml(formatEcpayDateTime(s.createdAt))}</td>
      <td>${escapeHtml(s.merchantTradeNo)}<br><small>${escapeHtml(s.allPayLogisticsId)}</small></td>
      <td>${escapeHtml(s.subType)}<br><small>${escapeHtml(store ? store.name : s.receiverStoreId)}</small></td>
      <td>${escapeHtml(s.receiverName)}<br><small>${escapeHtml(s.receiverCellPhone)}</small></td>
      <td>${escapeHtml(formatTwd(s.goodsAmount))}${s.isCollection ? '<br><small>取貨付款</small>' : ''}</td>
      <td>${escapeHtml(code)}</td>
      <td>${escapeHtml(String(s.statusCode))} ${escapeHtml(s.statusMessage)}</td>
      <td>${buttons}</td>
    </tr>`;
      })
      .join('\n');
    sendHtml(res, listPage('綠界物流模擬環境 - 物流訂單列表', '物流訂單列表', ['建立時間', '訂單編號', '超商 / 門市', '收件人', '金額', '寄件代碼', '物流狀態', '操作'], rows, '尚無物流訂單'));
  });

  const { url, close } = await listenSandbox(app, opts.port ?? 0, host, notifier);
  log?.info({ url, merchants: [...merchants.keys()] }, 'ecpay logistics sandbox listening');

  return {
    url,
    apiRequests,
    notifications,
    injectHttpStatus: (path, status, times = 1) => void injectedStatus.set(path, { status, times }),
    injectDelay: (path, ms, times = 1) => void injectedDelay.set(path, { ms, times }),
    injectRefusal: (path, message, times = 1) => void injectedRefusal.set(path, { message, times }),
    stores: (subType) => stores.filter((s) => s.chain === CHAIN_OF[subType]).map((s) => ({ ...s })),
    setStoreClosed: (subType, storeId, closed) => {
      const s = storeOf(subType, storeId);
      if (!s) throw new Error(`ecpay logistics sandbox: no store ${storeId} for ${subType}`);
      s.closed = closed;
    },
    advance: async (id, step) => advance(mustFind(id), step),
    advanceSilently: (id, step) => {
      muted = true;
      try {
        void advance(mustFind(id), step);
      } finally {
        muted = false;
      }
    },
    notifyAgain: async (id) => notifyOnce(mustFind(id)),
    getShipment: (ref) => {
      const id = 'allPayLogisticsId' in ref ? ref.allPayLogisticsId : [...tradeIndex.entries()].find(([k]) => k.endsWith(`\n${ref.merchantTradeNo}`) && (ref.merchantId === undefined || k.startsWith(`${ref.merchantId}\n`)))?.[1];
      const s = id === undefined ? undefined : shipments.get(id);
      return s ? snapshot(s) : undefined;
    },
    shipments: () => [...shipments.values()].map(snapshot),
    idle: () => notifier.idle(),
    close,
  };
}
