/**
 * ECPay logistics status codes (`RtnCode` of status notifications, `LogisticsStatus` of Query)
 * mapped to the shop's shipment states (specs/ecpay-logistics.md §7.3, codes from ECPay's
 * logistics_status.xlsx). Match on the code, never on RtnMsg: the texts change (§11 item 8).
 */

import { isCvsSubType } from './sub-types';

/**
 * What the shop does with a shipment:
 * - created: ECPay has the order; the parcel waits to be dropped off (or sent to the warehouse).
 * - shipped: handed over by the seller and on its way (dropped off, at or between warehouses).
 * - arrived_at_store: waiting at the pickup store; the pickup countdown runs.
 * - picked_up: the buyer collected it (and paid, for cash on pickup). Terminal.
 * - returned: on its way back or back with the seller (buyer never came, or the seller must act).
 * - store_closed: the pickup (or sender) store closed; a new store must be chosen (§8).
 * - store_changed: a new store was recorded; delivery goes on.
 * - failed: something went wrong and a person must look (lost, damaged, refused, expired window).
 * - cancelled: the shipment was cancelled. Terminal.
 * - unknown: a code the table does not know (it keeps growing): keep the state, log, alert.
 */
export type ShipmentState =
  | 'created'
  | 'shipped'
  | 'arrived_at_store'
  | 'picked_up'
  | 'returned'
  | 'store_closed'
  | 'store_changed'
  | 'failed'
  | 'cancelled'
  | 'unknown';

/** The spec's finer groups (§7.3), for messages that need to say more than the state. */
export type StatusGroup =
  | 'created'
  | 'dropped_off'
  | 'in_transit'
  | 'at_store'
  | 'picked_up'
  | 'unclaimed'
  | 'returned_to_sender_store'
  | 'return_collected'
  | 'seller_must_act'
  | 'store_closed'
  | 'store_changed'
  | 'return_order'
  | 'exception'
  | 'cancelled'
  | 'unknown';

export interface StatusMapping {
  state: ShipmentState;
  group: StatusGroup;
  /** Nothing more will happen to the parcel (picked up, the return collected, cancelled). */
  terminal: boolean;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const GROUP_CODES: ReadonlyArray<[StatusGroup, readonly number[]]> = [
  // 2031 / 7014 等待賣家出貨 are in ECPay's code list but not in the spec's table (same meaning).
  ['created', [300, 310, 311, 2001, 2024, 2031, 7014]],
  ['dropped_off', [2068, 3032]],
  ['in_transit', [2030, 3024, 2041, 2027, 2043, 2057, 2058, 2059, 2095]],
  ['at_store', [2073, 2063, 3018, 3029, 2098]],
  ['picked_up', [2067, 3022]],
  ['unclaimed', [2074, 2065, 3020, 2076, 2078, 3025, ...range(2079, 2093)]],
  ['returned_to_sender_store', [2072, 3019, 3031, 2099, 2069]],
  // 9001 / 9002 退貨已取 (Hi-Life) are in ECPay's code list but not in the spec's table.
  ['return_collected', [2070, 2044, 3023, 9001, 9002]],
  ['seller_must_act', [2075, 2077, 2096, 3021, 2097, 7035]],
  ['store_closed', [2037, 2104, 7011, 7032, 7101, 7201, 2055, 7255, 2016, 2026, 2028, 2049, 2050, 2101, 2103]],
  ['store_changed', [2000, 2105, 2025, 2102]],
  ['return_order', [325, 4001, 4002]],
  [
    'exception',
    [
      // lost, damaged, packaging, over-size, prohibited, label/barcode, expired window, others (§7.3)
      2042, 4004, 7006, 7007, 7018, 7020, 7008, 7036, 2032, 2048, 7009, 7010, 2033, 7016, 7104, 2034, 2052,
      2038, 2039, 2040, 7012, 7103, 7013, 2036, 2061, 2062, 2066, 2094, 5009, 7017, 7019, 7021, 7022, 7023, 7038,
    ],
  ],
  ['cancelled', [9999]],
];

const STATE_OF_GROUP: Readonly<Record<StatusGroup, ShipmentState>> = {
  created: 'created',
  dropped_off: 'shipped',
  in_transit: 'shipped',
  at_store: 'arrived_at_store',
  picked_up: 'picked_up',
  unclaimed: 'returned',
  returned_to_sender_store: 'returned',
  return_collected: 'returned',
  seller_must_act: 'returned',
  store_closed: 'store_closed',
  store_changed: 'store_changed',
  return_order: 'returned',
  exception: 'failed',
  cancelled: 'cancelled',
  unknown: 'unknown',
};

const TERMINAL_GROUPS: ReadonlySet<StatusGroup> = new Set(['picked_up', 'return_collected', 'cancelled']);

/** Code → group; building it refuses a code listed in two groups. */
export const GROUP_OF_CODE: ReadonlyMap<number, StatusGroup> = (() => {
  const m = new Map<number, StatusGroup>();
  for (const [group, codes] of GROUP_CODES) {
    for (const code of codes) {
      const before = m.get(code);
      if (before !== undefined) throw new Error(`logistics status ${code} is in both ${before} and ${group}`);
      m.set(code, group);
    }
  }
  return m;
})();

const UNKNOWN: StatusMapping = { state: 'unknown', group: 'unknown', terminal: false };

/**
 * The shop's state for a status code of a store-pickup shipment. The grouping of §7.3 applies
 * to every chain (Hi-Life mixes 7-ELEVEN-style 20xx and FamilyMart-style 30xx codes; no code
 * means different things on different chains). Home-delivery sub-types (TCAT, POST) have a code
 * space of their own that partly overlaps (5001–5008, 7001–7005): their codes are `unknown`
 * here, since the shop does not create home shipments at ECPay (the owner ships those).
 */
export function mapStatus(subType: string, rtnCode: number | string): StatusMapping {
  if (!isCvsSubType(subType)) return UNKNOWN;
  const text = String(rtnCode).trim();
  if (!/^\d{1,6}$/.test(text)) return UNKNOWN;
  const group = GROUP_OF_CODE.get(Number(text));
  if (group === undefined) return UNKNOWN;
  return { state: STATE_OF_GROUP[group], group, terminal: TERMINAL_GROUPS.has(group) };
}

/** RtnCode of a successful Express/Create: 300, or 2001 for Hi-Life (§6.2, §11 item 1). */
export const CREATE_ACCEPTED_CODES: ReadonlySet<number> = new Set([300, 2001]);
