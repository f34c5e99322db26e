/**
 * Turns a shopper's text into a command. Full-width digits, letters and spaces are folded by
 * NFKC; English keywords are case-insensitive. Pure: no I/O.
 */

import { MAX_LINE_QTY, type QtyOp } from '../domain/cart';
import { SHIPMENT_LIMITS } from '../domain/order-admin';

export type Command =
  | { kind: 'menu' }
  | { kind: 'cart' }
  | { kind: 'cart-set'; ref: string; change: QtyOp }
  | { kind: 'cart-usage' }
  | { kind: 'qty-invalid' }
  | { kind: 'checkout' }
  | { kind: 'orders' }
  | { kind: 'order'; orderNo: string }
  | { kind: 'cancel'; orderNo: string }
  | { kind: 'help' }
  | { kind: 'owner-today' }
  | { kind: 'owner-to-ship' }
  | { kind: 'owner-ship'; orderNo: string; tracking: string | null }
  | { kind: 'owner-complete'; orderNo: string }
  | { kind: 'owner-stock-list' }
  | { kind: 'owner-stock-set'; sku: string; qty: number }
  | { kind: 'owner-refund'; orderNo: string; amount: number | null }
  | { kind: 'owner-usage'; which: 'ship' | 'stock' | 'refund' | 'charge' }
  // Members.
  | { kind: 'points' }
  | { kind: 'wallet' }
  | { kind: 'member' }
  | { kind: 'owner-charge'; code: string; amount: number }
  | { kind: 'owner-admin' }
  | { kind: 'unknown' };

export function normalizeText(text: string): string {
  return text.normalize('NFKC').replace(/\s+/g, ' ').trim();
}

const MENU = new Set(['商品', 'menu', 'products', '商品目錄', '目錄']);
const CART = new Set(['購物車', 'cart']);
const CHECKOUT = new Set(['結帳', 'checkout']);
const ORDERS = new Set(['訂單', 'orders', 'order']);
const CANCEL = new Set(['取消', 'cancel']);
const HELP = new Set(['說明', 'help', '?', '幫助']);
const POINTS = new Set(['點數', 'points', '我的點數']);
const WALLET = new Set(['錢包', 'wallet', '餘額', '儲值']);
const MEMBER = new Set(['會員', 'member', '會員卡']);
const ADMIN = new Set(['後台', 'admin']);

const ORDER_NO = /^[A-Za-z][0-9]{6,}$/;
/** As the back office takes them (domain/order-admin.ts parseShipment): letters, digits and dashes. */
const TRACKING_NO = new RegExp(`^[A-Za-z0-9-]{1,${SHIPMENT_LIMITS.tracking}}$`);

function parseQty(token: string): QtyOp | null {
  const m = /^([+-]?)(\d{1,6})$/.exec(token);
  if (!m) return null;
  const n = Number(m[2]);
  if (m[1] === '+') return { op: 'add', delta: n };
  if (m[1] === '-') return { op: 'add', delta: -n };
  return { op: 'set', qty: n };
}

export function parseCommand(raw: string): Command {
  const text = normalizeText(raw);
  if (!text) return { kind: 'unknown' };
  const parts = text.split(' ');
  const head = parts[0]!.toLowerCase();
  const args = parts.slice(1);

  if (args.length === 0) {
    if (MENU.has(head)) return { kind: 'menu' };
    if (CART.has(head)) return { kind: 'cart' };
    if (CHECKOUT.has(head)) return { kind: 'checkout' };
    if (ORDERS.has(head)) return { kind: 'orders' };
    if (HELP.has(head)) return { kind: 'help' };
    if (POINTS.has(head)) return { kind: 'points' };
    if (WALLET.has(head)) return { kind: 'wallet' };
    if (MEMBER.has(head)) return { kind: 'member' };
    if (head === '收款') return { kind: 'owner-usage', which: 'charge' };
    if (head === '今日訂單') return { kind: 'owner-today' };
    if (head === '待出貨') return { kind: 'owner-to-ship' };
    if (head === '庫存') return { kind: 'owner-stock-list' };
    if (head === '出貨') return { kind: 'owner-usage', which: 'ship' };
    if (head === '退款') return { kind: 'owner-usage', which: 'refund' };
    if (ADMIN.has(head)) return { kind: 'owner-admin' };
    if (CANCEL.has(head)) return { kind: 'unknown' };
  }

  if (CART.has(head)) {
    if (args.length !== 2) return { kind: 'cart-usage' };
    const change = parseQty(args[1]!);
    if (!change) return { kind: 'qty-invalid' };
    return { kind: 'cart-set', ref: args[0]!, change };
  }
  if (ORDERS.has(head) && args.length === 1 && ORDER_NO.test(args[0]!)) {
    return { kind: 'order', orderNo: args[0]!.toUpperCase() };
  }
  if (CANCEL.has(head) && args.length === 1 && ORDER_NO.test(args[0]!)) {
    return { kind: 'cancel', orderNo: args[0]!.toUpperCase() };
  }
  if (head === '出貨') {
    if (args.length < 1 || args.length > 2 || !ORDER_NO.test(args[0]!)) return { kind: 'owner-usage', which: 'ship' };
    if (args[1] !== undefined && !TRACKING_NO.test(args[1])) return { kind: 'owner-usage', which: 'ship' };
    return { kind: 'owner-ship', orderNo: args[0]!.toUpperCase(), tracking: args[1]?.toUpperCase() ?? null };
  }
  if (head === '完成' && args.length === 1 && ORDER_NO.test(args[0]!)) {
    return { kind: 'owner-complete', orderNo: args[0]!.toUpperCase() };
  }
  if (head === '庫存') {
    if (args.length !== 2 || !/^\d{1,6}$/.test(args[1]!)) return { kind: 'owner-usage', which: 'stock' };
    return { kind: 'owner-stock-set', sku: args[0]!.toUpperCase(), qty: Number(args[1]) };
  }
  if (head === '退款') {
    if (args.length < 1 || args.length > 2 || !ORDER_NO.test(args[0]!)) return { kind: 'owner-usage', which: 'refund' };
    if (args[1] !== undefined && !/^\d{1,7}$/.test(args[1])) return { kind: 'owner-usage', which: 'refund' };
    return { kind: 'owner-refund', orderNo: args[0]!.toUpperCase(), amount: args[1] === undefined ? null : Number(args[1]) };
  }
  if (head === '收款') {
    // 收款 <code> <amount>: the code may be typed in groups (1234 5678 9012 3456) or with dashes.
    const amount = args.at(-1) ?? '';
    const code = args.slice(0, -1).join('');
    if (args.length < 2 || !/^\d{1,7}$/.test(amount) || !/^[\d-]{4,40}$/.test(code)) return { kind: 'owner-usage', which: 'charge' };
    return { kind: 'owner-charge', code, amount: Number(amount) };
  }
  return { kind: 'unknown' };
}

export const OWNER_COMMANDS: ReadonlySet<Command['kind']> = new Set([
  'owner-today',
  'owner-to-ship',
  'owner-ship',
  'owner-complete',
  'owner-stock-list',
  'owner-stock-set',
  'owner-refund',
  'owner-usage',
  'owner-charge',
  'owner-admin',
]);

/** Postback data: URL-encoded `action=<verb>&key=value`, ≤ 300 characters, self-contained. */
export type Postback =
  | { action: 'menu'; page: number }
  | { action: 'add'; productId: number }
  | { action: 'inc'; productId: number }
  | { action: 'dec'; productId: number }
  | { action: 'cart' }
  | { action: 'checkout'; cartVersion: number | null }
  | { action: 'pay'; orderNo: string; method: string }
  | { action: 'order'; orderNo: string }
  | { action: 'cancel'; orderNo: string }
  // Members.
  | { action: 'redeem'; orderNo: string }
  | { action: 'topup'; amount: number }
  | { action: 'tpay'; topupId: number; method: string }
  | { action: 'wallet' }
  | { action: 'points' }
  | { action: 'member' }
  // Delivery at checkout: no method shows the choices; `home`, a store sub-type, or `last`.
  | { action: 'dlv'; orderNo: string; method: string | null }
  | { action: 'invalid' };

const int = (s: string | null, min = 0): number | null => {
  if (s === null || !/^\d{1,9}$/.test(s)) return null;
  const n = Number(s);
  return n >= min ? n : null;
};

export function parsePostback(data: string): Postback {
  if (data.length > 300) return { action: 'invalid' };
  const p = new URLSearchParams(data);
  const o = p.get('o');
  const orderNo = o && ORDER_NO.test(o) ? o.toUpperCase() : null;
  switch (p.get('action')) {
    case 'menu': {
      const page = int(p.get('page') ?? '1', 1);
      return page ? { action: 'menu', page } : { action: 'invalid' };
    }
    case 'add':
    case 'inc':
    case 'dec': {
      const productId = int(p.get('p'), 1);
      return productId ? { action: p.get('action') as 'add' | 'inc' | 'dec', productId } : { action: 'invalid' };
    }
    case 'cart':
      return { action: 'cart' };
    case 'checkout':
      return { action: 'checkout', cartVersion: int(p.get('v')) };
    case 'pay': {
      const method = p.get('m');
      return orderNo && method ? { action: 'pay', orderNo, method } : { action: 'invalid' };
    }
    case 'order':
      return orderNo ? { action: 'order', orderNo } : { action: 'invalid' };
    case 'dlv': {
      const m = p.get('m');
      if (!orderNo || (m !== null && !/^[A-Za-z0-9]{1,20}$/.test(m))) return { action: 'invalid' };
      return { action: 'dlv', orderNo, method: m };
    }
    case 'cancel':
      return orderNo ? { action: 'cancel', orderNo } : { action: 'invalid' };
    case 'redeem':
      return orderNo ? { action: 'redeem', orderNo } : { action: 'invalid' };
    case 'topup': {
      const amount = int(p.get('a'), 1);
      return amount ? { action: 'topup', amount } : { action: 'invalid' };
    }
    case 'tpay': {
      const topupId = int(p.get('t'), 1);
      const method = p.get('m');
      return topupId && method ? { action: 'tpay', topupId, method } : { action: 'invalid' };
    }
    case 'wallet':
    case 'points':
    case 'member':
      return { action: p.get('action') as 'wallet' | 'points' | 'member' };
    default:
      return { action: 'invalid' };
  }
}

export function postbackData(pb: Exclude<Postback, { action: 'invalid' }>): string {
  const p = new URLSearchParams();
  p.set('action', pb.action);
  switch (pb.action) {
    case 'menu':
      p.set('page', String(pb.page));
      break;
    case 'add':
    case 'inc':
    case 'dec':
      p.set('p', String(pb.productId));
      break;
    case 'checkout':
      if (pb.cartVersion !== null) p.set('v', String(pb.cartVersion));
      break;
    case 'pay':
      p.set('o', pb.orderNo);
      p.set('m', pb.method);
      break;
    case 'order':
    case 'cancel':
    case 'redeem':
      p.set('o', pb.orderNo);
      break;
    case 'topup':
      p.set('a', String(pb.amount));
      break;
    case 'dlv':
      p.set('o', pb.orderNo);
      if (pb.method) p.set('m', pb.method);
      break;
    case 'tpay':
      p.set('t', String(pb.topupId));
      p.set('m', pb.method);
      break;
    case 'cart':
    case 'wallet':
    case 'points':
    case 'member':
      break;
  }
  return p.toString();
}
