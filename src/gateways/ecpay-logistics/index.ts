import type {
  CreatedShipment,
  CreateShipmentInput,
  LogisticsForm,
  MapFormInput,
  MapReplyResult,
  NotificationVerification,
  ShipmentCodes,
  ShipmentInfo,
  ShipmentRef,
  UpdateStoreInput,
} from './ecpay-logistics-client';
import type { CvsSubType } from './sub-types';

/**
 * What the domain uses for convenience-store pickup. EcpayLogisticsClient implements it; the
 * domain keeps ECPay's field names out of its own code and deals in these shapes. No method
 * touches the database; the HTTP calls must never run inside a transaction (HELPER-RULES §3).
 *
 * Errors: RangeError for input that should have been validated (checkRecipient, goodsNameFor);
 * GatewayError for ECPay trouble (`retryable` says whether trying again can help), with
 * LogisticsRejectedError (`reason`) when ECPay refused the call.
 */
export interface LogisticsPort {
  /** The store chains offered (ECPAY_LOGISTICS_SUB_TYPES), all of the account's kind. */
  readonly subTypes: readonly CvsSubType[];

  /**
   * The signed form that opens ECPay's store map for one chain; the token comes back in the
   * reply. Render it with renderFormPage() as a top-level page (never an iframe).
   */
  mapForm(input: MapFormInput): LogisticsForm;

  /** A zh-TW page that posts a map (or print) form on load. */
  renderFormPage(form: LogisticsForm, kind?: 'map' | 'print'): string;

  /**
   * Checks the store map's reply (an unsigned browser POST to ServerReplyURL) and returns the
   * chosen store with the token; the caller must still find the token it issued.
   */
  parseMapReply(body: unknown, expect?: { subType?: CvsSubType }): MapReplyResult;

  /**
   * Creates the shipment at ECPay (Express/Create). Not idempotent: after a timeout, query by
   * merchantTradeNo before trying again with a new one.
   */
  createShipment(input: CreateShipmentInput): Promise<CreatedShipment>;

  /**
   * Verifies a status notification (or a 7-ELEVEN C2C store-change notice) and maps its code
   * to a ShipmentState. Reply LOGISTICS_ACK once recorded, logisticsNack() when refused.
   */
  verifyNotification(body: unknown): NotificationVerification;

  /** The authoritative state of one shipment (QueryLogisticsTradeInfo/V5), for reconciliation. */
  queryShipment(ref: ShipmentRef): Promise<ShipmentInfo>;

  /** Records a new pickup (or return) store after store_closed (C2C 7-ELEVEN, FamilyMart, OK). */
  updateStore(input: UpdateStoreInput): Promise<void>;

  /** Cancels a 7-ELEVEN C2C shipment that was not dropped off yet. */
  cancelShipment(input: ShipmentCodes): Promise<void>;

  /** The form that opens ECPay's printable label for one shipment (new top-level tab). */
  printForm(input: ShipmentCodes): LogisticsForm;
}

export {
  EcpayLogisticsClient,
  LOGISTICS_ACK,
  LogisticsRejectedError,
  classifyRejection,
  dropOffCode,
  logisticsNack,
  newLogisticsTradeNo,
  newMapToken,
  type CreatedShipment,
  type CreateShipmentInput,
  type EcpayLogisticsClientOptions,
  type LogisticsForm,
  type LogisticsNotification,
  type LogisticsRejectReason,
  type MapFormInput,
  type MapReplyResult,
  type MapStore,
  type NotificationVerification,
  type ShipmentCodes,
  type ShipmentInfo,
  type ShipmentRef,
  type StatusNotification,
  type StoreChangeNotification,
  type UpdateStoreInput,
} from './ecpay-logistics-client';
export { goodsNameFor, sanitizeGoodsName, GOODS_NAME_MAX } from './goods-name';
export { logisticsMac, verifyLogisticsMac } from './logistics-mac';
export { checkAddress, checkCellPhone, checkContactName, checkRecipient, nameWidth, type Recipient, type RecipientCheck } from './recipient';
export { mapStatus, type ShipmentState, type StatusGroup, type StatusMapping } from './status-codes';
export { CHAIN_OF, C2C_SUB_TYPES, B2C_SUB_TYPES, isCvsSubType, type CvsChain, type CvsSubType } from './sub-types';
