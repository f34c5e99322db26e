import type { messagingApi } from '@line/bot-sdk';
import type { CartView } from '../../src/domain/cart';
import type { Product } from '../../src/domain/catalog';
import { CATALOG_PAGE_SIZE } from '../../src/domain/catalog';
import type { OwnerNotice, ShopperNotice } from '../../src/domain/notices';
import type { Order, OrderItems, OrderLine } from '../../src/domain/orders';
import type { PaymentAttempt } from '../../src/domain/payments';
import type { DailyFigures } from '../../src/domain/reports';
import type { DeliveryDetails, DeliveryOption } from '../../src/domain/delivery';
import { preview, PREVIEWS } from '../../src/cli/flex-preview';
import { PAYMENT_METHODS } from '../../src/gateways/payment-gateway';
import { BUBBLE_TEMPLATES, listTemplateFiles, loadTemplate } from '../../src/line/flex-renderer';
import { parseCommand } from '../../src/line/command-parser';
import { checkMessages, LIMITS } from '../../src/line/message-limits';
import { renderOwnerNotice, renderShopperNotice } from '../../src/line/notifier';
import * as V from '../../src/line/views';
import type { LedgerEntry } from '../../src/domain/members/ledger';
import { CARRIER_LABEL, METHOD_LABEL, T } from '../../src/texts';

/** A long public origin, as a shop behind a long host name would have. */
const BASE = `https://${'shop'.repeat(20)}.example.com`;

const long = (n: number) => '台灣好茶'.repeat(Math.ceil(n / 4)).slice(0, n);

const product = (i: number, stock = 5): Product => ({
  id: 100000 + i, sku: `SKU-${String(i).padStart(6, '0')}-LONGVARIANT`, category_id: 1, name: long(80), description: long(300), price: 199999,
  // Every kind of photo: uploaded (hash), hosted elsewhere, none (placeholder).
  image_url: i % 3 === 2 ? `https://images.example.com/products/${'x'.repeat(200)}/${i}.jpg` : null,
  image_hash: i % 3 === 1 ? 'f'.repeat(64) : null, active: true, stock_on_hand: stock, stock_reserved: 0,
});

const order = (status: Order['status'] = 'pending_payment'): Order => ({
  id: 123456789, order_no: 'L2611229999999', line_user_id: 'U' + 'a'.repeat(32), status, total: 9_999_999, item_count: 99 * 20,
  payment_method: 'ecpay-credit', hold_expires_at: new Date(), cart_id: 1, cart_version: 1, paid_amount: 0, refunded_amount: 0,
  tracking_no: 'T'.repeat(40), created_at: new Date(), paid_at: null, shipped_at: null,
});

const lines: OrderLine[] = Array.from({ length: 20 }, (_, i) => ({
  id: i, order_id: 1, product_id: i, sku: `SKU-${i}`, name: long(80), unit_price: 199999, qty: 99, line_total: 19799901,
}));

/** Every goods line the cart allows, plus every kind of fee and discount, with long labels. */
const items: OrderItems = {
  lines,
  adjustments: ['shipping', 'tier-discount', 'points'].map((kind, i) => ({ id: i, order_id: 1, kind, label: long(40), amount: i % 2 ? -9_999_999 : 9_999_999, details: null })),
};

const cart: CartView = {
  cartId: 1, version: 123456, subtotal: 99_999_999, count: 1980,
  lines: Array.from({ length: 20 }, (_, i) => ({ product_id: 100000 + i, qty: 99, sku: `SKU-${i}`, name: long(80), price: 199999, active: i % 3 !== 0, available: i })),
};

const orderAttempt = (details: Record<string, unknown>, method: PaymentAttempt['method'] = 'ecpay-credit'): PaymentAttempt => ({
  id: 1, order_id: 123456789, topup_id: null, provider: method.startsWith('ecpay') ? 'ecpay' : 'sinopac', method, trade_no: 'E'.repeat(20), public_ref: 'r'.repeat(24),
  request_key: null, amount: 9_999_999, status: 'pending', gateway_trade_id: null, details, expires_at: new Date(), created_at: new Date(), paid_at: null,
});

/** Delivery details at their longest (address 100 characters, store texts at ECPay's limits). */
const homeDelivery: DeliveryDetails = {
  method: 'home', subType: null, recipientName: '歐陽娜娜娜', recipientPhone: '0912345678', recipientZip: '100001', recipientAddress: long(100),
  storeId: null, storeName: null, storeAddress: null, storeOutside: null,
};
const cvsDelivery: DeliveryDetails = {
  method: 'cvs', subType: 'UNIMARTC2C', recipientName: 'ABCDEFGHIJ', recipientPhone: '0912345678', recipientZip: null, recipientAddress: null,
  storeId: '131386', storeName: long(10), storeAddress: long(60), storeOutside: true,
};
const readyOrder = (d: DeliveryDetails): Order => ({
  ...order(), delivery_method: d.method, delivery_sub_type: d.subType, recipient_name: d.recipientName, recipient_phone: d.recipientPhone,
  recipient_zip: d.recipientZip, recipient_address: d.recipientAddress, store_id: d.storeId, store_name: d.storeName, store_address: d.storeAddress,
  store_outside: d.storeOutside, delivery_ready_at: new Date(),
});
const deliveryChoices = {
  order: order(),
  options: ['home', 'UNIMARTC2C', 'FAMIC2C', 'HILIFEC2C', 'OKMARTC2C'].map((key, i) => ({
    key: key as DeliveryOption['key'], method: (key === 'home' ? 'home' : 'cvs') as DeliveryOption['method'], subType: key === 'home' ? null : (key as DeliveryOption['subType']),
    fee: 999_999, effectiveFee: i % 2 ? 0 : 999_999,
  })),
  last: homeDelivery,
};

/** A product name as long as an owner can make it, and a SKU to match. */
const stockProduct = { id: 2_000_000_000, sku: `SKU-${'X'.repeat(60)}`, name: long(200) };

/** A day's figures at their largest: every method, 3 long-named best sellers, the full low-stock list and more. */
const figures: DailyFigures = {
  date: '2026-12-31', orders: 99_999, paid: 99_999, amount: 999_999_999,
  byMethod: Object.keys(METHOD_LABEL).map((method) => ({ method, orders: 99_999, amount: 999_999_999 })),
  topProducts: [1, 2, 3].map((i) => ({ productId: i, name: long(200), qty: 9_999_999, amount: 999_999_999 })),
  lowStock: Array.from({ length: 10 }, (_, i) => ({ id: i, sku: stockProduct.sku, name: long(200), available: -9999 })),
  lowStockCount: 99_999, threshold: 1_000_000, pushesToday: 9_999_999, pushesThisMonth: 99_999_999,
};

const links = { order: (orderNo: string) => `https://shop.example.com/${'p'.repeat(200)}/admin/orders/${orderNo}` };

const receipt = {
  chargeId: 999_999_999, userId: 'U' + 'a'.repeat(32), displayName: long(20), amount: 999_999, discount: 99_999, tierName: long(20), paid: 999_999,
  balance: 999_999_999, pointsEarned: 999_999, codeTail: '9999', at: new Date(),
};

/** Every notice the domain raises to a shopper, with the largest values. */
function shopperNotices(): Array<[string, ShopperNotice]> {
  const all = [...PAYMENT_METHODS, 'wallet' as const];
  return [
    ['payment instructions', { type: 'payment-instructions', instructions: { order: order(), attempt: orderAttempt({ kind: 'virtual-account', bankCode: '807', account: '9'.repeat(16), deadline: new Date().toISOString() }, 'sinopac-atm'), otherMethods: all } }],
    ['payment failed', { type: 'payment-failed', order: order(), items, methods: all }],
    ['code issue failed', { type: 'code-issue-failed', order: order(), items, method: 'ecpay-cvs', methods: all }],
    ['receipt', { type: 'receipt', order: order('paid'), items, method: 'wallet', late: true, pointsEarned: 999_999_999 }],
    ['delivery ready (store chosen)', { type: 'delivery-ready', order: readyOrder(cvsDelivery), items, delivery: cvsDelivery, methods: all, storeChosen: true }],
    ['delivery store chosen', { type: 'delivery-store', orderNo: order().order_no, chain: '7-ELEVEN', storeName: long(10), storeAddress: long(60) }],
    ['paid, no stock', { type: 'paid-no-stock', orderNo: order().order_no }],
    ['expired', { type: 'expired', orderNo: order().order_no }],
    ['top-up instructions', { type: 'topup-instructions', instructions: { topup, attempt: attempt({ kind: 'virtual-account', bankCode: '807', account: '9'.repeat(16), deadline: new Date().toISOString() }), otherMethods: [...PAYMENT_METHODS] } }],
    ['top-up failed', { type: 'topup-failed', topup, methods: [...PAYMENT_METHODS] }],
    ['top-up credited', { type: 'topup-credited', amount: 999_999, balance: 999_999_999 }],
    ['in-store charge', { type: 'member-charge', receipt }],
    ['refunded to the wallet', { type: 'refunded', orderNo: order().order_no, amount: 9_999_999, method: 'wallet', full: true, walletBalance: 999_999_999 }],
    ['reminder, no method chosen', { type: 'payment-reminder', order: order(), instructions: null, methods: all }],
    ['reminder, ATM account', { type: 'payment-reminder', order: order(), instructions: { order: order(), attempt: orderAttempt({ kind: 'virtual-account', bankCode: '807', account: '9'.repeat(16) }, 'sinopac-atm'), otherMethods: all.slice(1) }, methods: all }],
    ['reminder, ECPay ATM code', { type: 'payment-reminder', order: order(), instructions: { order: order(), attempt: orderAttempt({ kind: 'ecpay-atm-code', bankCode: '812', account: '9'.repeat(16) }, 'ecpay-atm'), otherMethods: all.slice(1) }, methods: all }],
    ['reminder, CVS code', { type: 'payment-reminder', order: order(), instructions: { order: order(), attempt: orderAttempt({ kind: 'ecpay-cvs-code', paymentNo: 'L'.repeat(20) }, 'ecpay-cvs'), otherMethods: all.slice(1) }, methods: all }],
    ['reminder, ECPay card link', { type: 'payment-reminder', order: order(), instructions: { order: order(), attempt: orderAttempt({ kind: 'redirect', url: `https://shop.example.com/${'p'.repeat(200)}/payments/ecpay/checkout/${'r'.repeat(24)}` }), otherMethods: all.slice(1) }, methods: all }],
    ['reminder, SinoPac card', { type: 'payment-reminder', order: order(), instructions: { order: order(), attempt: orderAttempt({ kind: 'redirect', url: 'https://sandbox.sinopac.com/card' }, 'sinopac-card'), otherMethods: all.slice(1) }, methods: all }],
    ...Object.keys(CARRIER_LABEL).map((carrier): [string, ShopperNotice] => [`shipped by ${carrier}`, { type: 'shipped', orderNo: order().order_no, tracking: '9'.repeat(60), carrier }]),
    ['shipped, unknown carrier with a long name', { type: 'shipped', orderNo: order().order_no, tracking: '9'.repeat(60), carrier: long(300) }],
    ['shipped, no tracking number', { type: 'shipped', orderNo: order().order_no, tracking: null, carrier: null }],
    ['completed', { type: 'completed', orderNo: order().order_no }],
    ['arrived at the store', { type: 'arrived', orderNo: order().order_no, storeName: long(10), storeAddress: long(60), pickupDeadline: new Date() }],
    ['arrived, no address or deadline', { type: 'arrived', orderNo: order().order_no, storeName: long(10), storeAddress: null, pickupDeadline: null }],
    ['returned', { type: 'returned', orderNo: order().order_no }],
    ['pickup store closed, the store-change link', { type: 'store-closed', orderNo: order().order_no, subType: 'UNIMARTC2C', storeName: long(10), url: `https://shop.example.com/${'p'.repeat(200)}/store-change/${'r'.repeat(20)}`, expiresAt: new Date() }],
    ['new pickup store taken', { type: 'store-changed', orderNo: order().order_no, subType: 'FAMIC2C', storeName: long(10), storeAddress: long(60) }],
    ['refunded in part to a card', { type: 'refunded', orderNo: order().order_no, amount: 9_999_999, method: 'ecpay-credit', full: false }],
    ['refunded in full, no method', { type: 'refunded', orderNo: order().order_no, amount: 9_999_999, method: null, full: true }],
  ];
}

/** Every notice the domain raises to the owners, with the largest values. */
function ownerNotices(): Array<[string, OwnerNotice]> {
  const longName = long(20);
  return [
    ['new order (20 lines)', { type: 'new-order', order: order(), items, shopperName: longName }],
    ['new order, unnamed shopper', { type: 'new-order', order: order(), items, shopperName: null }],
    ['expired', { type: 'order-closed', order: order('expired'), to: 'expired', by: { kind: 'system', name: null } }],
    ['cancelled by the shopper', { type: 'order-closed', order: order('cancelled'), to: 'cancelled', by: { kind: 'shopper', name: longName } }],
    ['cancelled by an owner', { type: 'order-closed', order: order('cancelled'), to: 'cancelled', by: { kind: 'owner', name: longName } }],
    ['low stock', { type: 'low-stock', product: stockProduct, available: 1_000_000, threshold: 1_000_000 }],
    ['sold out', { type: 'sold-out', product: stockProduct }],
    ['paid', { type: 'paid', order: order('paid'), items, method: 'ecpay-cvs', late: true }],
    ['paid, no stock', { type: 'paid-no-stock', orderNo: order().order_no, amount: 9_999_999 }],
    ['mismatch', { type: 'mismatch', provider: 'ecpay', tradeNo: 'E'.repeat(20), problems: [{ kind: 'amount', bank: 9_999_999, ours: 9_999_998 }, { kind: 'merchant' }, { kind: 'pay-type' }, { kind: 'callback-amount', got: '9'.repeat(20), ours: 1 }, { kind: 'double-payment', orderNo: order().order_no }, { kind: 'bank-verify-failed', code: 'X'.repeat(50) }, { kind: 'unknown-trade' }] }],
    ['simulated', { type: 'simulated', tradeNo: 'E'.repeat(20) }],
    ['bad expire date', { type: 'bad-expire-date', orderNo: order().order_no, tradeNo: 'E'.repeat(20), got: 'x'.repeat(100), hold: new Date() }],
    ['bank paused', { type: 'bank-paused', until: new Date() }],
    ['refund done', { type: 'refund-done', orderNo: order().order_no, amount: 9_999_999, total: 9_999_999 }],
    ['refund failed', { type: 'refund-failed', orderNo: order().order_no }],
    ['refund unknown', { type: 'refund-unknown', orderNo: order().order_no, amount: 9_999_999 }],
    ['refund unreachable', { type: 'refund-unreachable', orderNo: order().order_no, amount: 9_999_999 }],
    ['daily summary, everything at its largest', { type: 'daily-summary', figures, quota: { limit: 999_999_999, used: 999_999_999 } }],
    ['daily summary, a quiet day, quota unknown', { type: 'daily-summary', figures: { ...figures, byMethod: [], topProducts: [], lowStock: [], lowStockCount: 0 }, quota: null }],
    ['daily summary with the members\' day', { type: 'daily-summary', figures, quota: null, members: { topups: 999_999, topupAmount: 999_999_999, pointsGranted: 999_999_999 } }],
    ['points a refund could not take back', { type: 'points-shortfall', orderNo: order().order_no, userId: 'U' + 'a'.repeat(32), due: 999_999_999, taken: 0 }],
    ['in-store charge', { type: 'member-charge', receipt }],
    ['store device entries refused (more than are listed)', {
      type: 'pos-rejected', deviceId: 'd'.repeat(64),
      entries: Array.from({ length: 80 }, (_, i) => ({ txnNo: `T${'9'.repeat(30)}${i}`, amount: 999_999, reason: 'insufficient-balance' })),
    }],
    ['shipment created (7-ELEVEN)', {
      type: 'shipment-created',
      shipment: { orderNo: order().order_no, subType: 'UNIMARTC2C', storeName: long(10), shipmentNo: 'C9680734', validationNo: '4551', dropOffCode: 'C96807344551', dropOffBy: new Date() },
    }],
    ['shipment created (FamilyMart)', {
      type: 'shipment-created',
      shipment: { orderNo: order().order_no, subType: 'FAMIC2C', storeName: long(10), shipmentNo: '09936343518', validationNo: '', dropOffCode: '09936343518', dropOffBy: new Date() },
    }],
    ['shipment refused, store', { type: 'shipment-failed', orderNo: order().order_no, reason: 'store', message: 'ReceiverStoreID Is Error' }],
    ['shipment refused, other', { type: 'shipment-failed', orderNo: order().order_no, reason: 'other', message: long(100) }],
    ['shipment unknown', { type: 'shipment-unknown', orderNo: order().order_no }],
    ['parcel returned', { type: 'parcel-returned', orderNo: order().order_no, storeName: long(10) }],
    ['store closed', { type: 'store-closed', orderNo: order().order_no, storeName: long(10), shopperAsked: false }],
    ['store closed, the shopper asked', { type: 'store-closed', orderNo: order().order_no, storeName: long(10), shopperAsked: true }],
    ['the shopper chose a new store', { type: 'store-changed', orderNo: order().order_no, storeName: long(10), storeAddress: long(60), oldStoreName: long(10) }],
    ['shipment problem', { type: 'shipment-problem', orderNo: order().order_no, code: '7006', message: long(100) }],
  ];
}

/** Every notice as the notifier renders it: each must be one message within LINE's limits. */
function everyNotice(): Array<[string, messagingApi.Message]> {
  return [
    ...shopperNotices().flatMap(([name, n]) => renderShopperNotice(n).map((m, i): [string, messagingApi.Message] => [`shopper: ${name} (${i + 1})`, m])),
    ...ownerNotices().flatMap(([name, n]) => renderOwnerNotice(n, links).map((m, i): [string, messagingApi.Message] => [`owner: ${name} (${i + 1})`, m])),
  ];
}

/** Each notice type once (the compiler insists on every member of the unions). */
const SHOPPER_NOTICE_TYPES: Record<ShopperNotice['type'], true> = {
  'payment-instructions': true, 'payment-failed': true, 'code-issue-failed': true, receipt: true, 'paid-no-stock': true, refunded: true, shipped: true,
  completed: true, expired: true, 'payment-reminder': true, 'topup-instructions': true, 'topup-failed': true, 'topup-credited': true, 'member-charge': true,
  'delivery-ready': true, 'delivery-store': true, arrived: true, returned: true, 'store-closed': true, 'store-changed': true,
};
const OWNER_NOTICE_TYPES: Record<OwnerNotice['type'], true> = {
  'new-order': true, 'order-closed': true, 'low-stock': true, 'sold-out': true, paid: true, 'paid-no-stock': true, mismatch: true, simulated: true,
  'bad-expire-date': true, 'bank-paused': true, 'refund-done': true, 'refund-failed': true, 'refund-unknown': true, 'refund-unreachable': true,
  'daily-summary': true, 'points-shortfall': true, 'member-charge': true, 'pos-rejected': true,
  'shipment-created': true, 'shipment-failed': true, 'shipment-unknown': true, 'parcel-returned': true, 'store-closed': true, 'store-changed': true, 'shipment-problem': true,
};

const entries = (money: boolean): LedgerEntry[] =>
  Array.from({ length: 5 }, (_, i) => ({
    id: i, account_id: 1, kind: i % 2 ? 'redeem-refund' : 'clawback', amount: (i % 2 ? 1 : -1) * 999_999_999, balance_after: 999_999_999, shortfall: 0,
    source: 'x:1', details: money ? null : { orderNo: 'L2611229999999' }, created_at: new Date(),
  }));
const tier = { name: long(20), minPoints: 999_999_999, discountPercent: 99 };
const attempt = (details: Record<string, unknown>): PaymentAttempt => ({
  id: 1, order_id: null, topup_id: 123456789, provider: 'ecpay', method: 'ecpay-credit', trade_no: 'E'.repeat(17), public_ref: 'r'.repeat(24), request_key: null,
  amount: 999_999, status: 'pending', gateway_trade_id: null, details, expires_at: new Date(), created_at: new Date(), paid_at: null,
});
const topup = { id: 123456789, line_user_id: 'U', amount: 999_999, status: 'pending' as const, created_at: new Date(), paid_at: null };

/** Every message the bot can send, built with the largest values our data allows. */
function everyMessage(): Array<[string, messagingApi.Message]> {
  const products = Array.from({ length: CATALOG_PAGE_SIZE }, (_, i) => product(i, i % 2));
  const all = [...PAYMENT_METHODS, 'wallet' as const];
  const summary = { balance: 999_999_999, earned: 999_999_999, standing: { tier, next: { tier, needed: 999_999_999 } }, entries: entries(false) };
  return [
    ['order created, points offered', V.orderCreatedMessage(order(), items, all, [V.redeemButton(order().order_no, { points: 999_999_999, amount: 9_999_999 })])],
    ['order detail, points offered', V.orderDetailMessage(order(), items, all, [V.redeemButton(order().order_no, { points: 999_999_999, amount: 9_999_999 })])],
    ['receipt with points', V.receiptMessage(order('paid'), items, 'wallet', true, 999_999_999)],
    ['points', V.pointsMessage(summary, 9, long(300))],
    ['points, no entries, top tier', V.pointsMessage({ ...summary, entries: [], standing: { tier, next: null } }, 0, long(300))],
    ['wallet (6 top-up amounts)', V.walletMessage({ balance: 999_999_999, entries: entries(true), topupAmounts: [999_999, 999_998, 999_997, 999_996, 999_995, 999_994] })],
    ['top-up methods', V.topupMessage(topup, PAYMENT_METHODS)],
    ['top-up ATM', V.topupInstructionsMessage({ topup, attempt: attempt({ kind: 'virtual-account', bankCode: '807', account: '9'.repeat(16), deadline: new Date().toISOString() }), otherMethods: [...PAYMENT_METHODS] })],
    ['top-up CVS', V.topupInstructionsMessage({ topup, attempt: attempt({ kind: 'ecpay-cvs-code', paymentNo: 'L'.repeat(14), deadline: new Date().toISOString() }), otherMethods: [] })],
    ['top-up link', V.topupInstructionsMessage({ topup, attempt: attempt({ kind: 'redirect', url: `https://shop.example.com/payments/ecpay/checkout/${'r'.repeat(24)}` }), otherMethods: [...PAYMENT_METHODS] })],
    [
      'member card',
      V.memberCardMessage(
        { displayName: long(100), standing: { ...summary.standing, earned: 999_999_999 }, points: 999_999_999, wallet: 999_999_999, code: { code: '9'.repeat(16), qrRef: 'x'.repeat(43), expiresAt: new Date() } },
        9,
        `https://shop.example.com/member/qr/${'x'.repeat(43)}.png`,
      ),
    ],
    ['catalog page with "more"', V.catalogMessage(products, 1, 99, 99 * CATALOG_PAGE_SIZE, CATALOG_PAGE_SIZE, BASE)],
    ['catalog last page', V.catalogMessage(products.slice(0, 3), 99, 99, 99 * CATALOG_PAGE_SIZE, CATALOG_PAGE_SIZE, BASE)],
    ['empty catalog', V.catalogMessage([], 1, 1, 0, CATALOG_PAGE_SIZE, BASE)],
    ['cart (20 lines)', V.cartMessage(cart)],
    ['empty cart', V.cartMessage({ ...cart, lines: [] })],
    ['order created, all methods', V.orderCreatedMessage(order(), items, all)],
    ['order created, no methods', V.orderCreatedMessage(order(), items, [])],
    ['order created, delivery choices with the last details', V.orderCreatedMessage(order(), items, all, [V.redeemButton(order().order_no, { points: 999_999_999, amount: 9_999_999 })], deliveryChoices)],
    ['delivery choices', V.deliveryChoiceMessage(deliveryChoices)],
    ['delivery page link', V.deliveryLinkMessage(order().order_no, '7-ELEVEN 取貨', `${BASE}/delivery/${'t'.repeat(20)}`, new Date())],
    ['delivery ready, home', V.deliveryReadyMessage(readyOrder(homeDelivery), items, homeDelivery, all)],
    ['delivery ready, store chosen', V.deliveryReadyMessage(readyOrder(cvsDelivery), items, cvsDelivery, all, true)],
    ['order detail with delivery and shipment', V.orderDetailMessage(readyOrder(cvsDelivery), items, all, [], { provider: 'ecpay', shipment_no: 'C'.repeat(12), validation_no: '9999', status: 'arrived_at_store' })],
    ['orders list', V.ordersListMessage(Array.from({ length: 5 }, () => order('paid')))],
    ['no orders', V.ordersListMessage([])],
    ['order detail pending', V.orderDetailMessage(order(), items, all)],
    ['order detail shipped', V.orderDetailMessage(order('shipped'), items, all)],
    ['receipt (late)', V.receiptMessage(order('paid'), items, 'sinopac-atm', true)],
    ['owner paid', V.ownerPaidMessage(order('paid'), items, 'ecpay-cvs', [T.lateRereserved])],
    ['virtual account', V.virtualAccountMessage({ orderNo: 'L2611229999999', amount: 9_999_999, bankCode: '807', account: '9'.repeat(16), deadline: new Date(), otherMethods: V.paymentButtons(order(), all) })],
    ['cvs code', V.cvsCodeMessage({ orderNo: 'L2611229999999', amount: 6000, code: 'LLL12345678901', deadline: new Date() })],
    ['pay link', V.payLinkMessage({ orderNo: 'L2611229999999', amount: 199999, method: 'ecpay-credit', url: `https://shop.example.com/payments/ecpay/checkout/${'r'.repeat(24)}` })],
    ['back-office login', V.adminLoginMessage(`${BASE}/admin/login/${'t'.repeat(43)}`, new Date())],
    ['long text', V.text(long(6000))],
    ['follow greeting (longest display name)', V.welcomeMessage(long(20))],
    ['help for a shopper', V.helpMessage(false)],
    ['help for an owner', V.helpMessage(true)],
    ['not understood', V.unknownMessage()],
    ...everyNotice(),
    ...Object.entries(T)
      .filter(([, v]) => typeof v === 'string')
      .map(([k, v]) => [`text ${k}`, V.text(v as string)] as [string, messagingApi.Message]),
  ];
}

describe('every message the bot can send stays within LINE limits', () => {
  test('the list of notices has every kind of notice the domain can raise', () => {
    expect([...new Set(shopperNotices().map(([, n]) => n.type))].sort()).toEqual(Object.keys(SHOPPER_NOTICE_TYPES).sort());
    expect([...new Set(ownerNotices().map(([, n]) => n.type))].sort()).toEqual(Object.keys(OWNER_NOTICE_TYPES).sort());
  });

  test.each(everyMessage())('%s', (_name, message) => {
    expect(checkMessages([message])).toEqual([]);
  });

  test('the checker itself catches each limit', () => {
    const bubble = { type: 'bubble', body: { type: 'box', layout: 'vertical', contents: [{ type: 'text', text: 'x'.repeat(31_000) }] } };
    const button = (data: string) => ({ type: 'bubble', footer: { type: 'box', layout: 'vertical', contents: [{ type: 'button', action: { type: 'postback', label: 'x'.repeat(41), data } }] } });
    const cases: Array<[unknown, RegExp]> = [
      [{ type: 'text', text: 'x'.repeat(LIMITS.textChars + 1) }, /text longer/],
      [{ type: 'flex', altText: 'x'.repeat(1501), contents: { type: 'bubble' } }, /altText longer/],
      [{ type: 'flex', altText: 'a', contents: bubble }, /bubble larger/],
      [{ type: 'flex', altText: 'a', contents: { type: 'carousel', contents: Array(13).fill({ type: 'bubble' }) } }, /13 bubbles/],
      [{ type: 'flex', altText: 'a', contents: button('d'.repeat(301)) }, /data longer than 300/],
      [{ type: 'flex', altText: 'a', contents: button('ok') }, /label longer than 40/],
    ];
    const image = (url: string) => ({ type: 'flex', altText: 'a', contents: { type: 'bubble', hero: { type: 'image', url } } });
    cases.push([image('http://shop.example.com/media/products/x.jpg'), /image url must be https/]);
    for (const [m, re] of cases) expect(checkMessages([m as messagingApi.Message]).join('; ')).toMatch(re);
    // Plain HTTP only on this machine's loopback (the sandbox and tests), where LINE never fetches.
    for (const url of ['https://shop.example.com/a.jpg', 'http://127.0.0.1:3000/media/placeholder/v1.jpg', 'http://localhost:3000/x.jpg']) {
      expect(checkMessages([image(url) as messagingApi.Message])).toEqual([]);
    }
    for (const url of ['http://10.0.0.5/x.jpg', 'http://127.0.0.1.example.com/x.jpg', 'ftp://127.0.0.1/x.jpg']) {
      expect(checkMessages([image(url) as messagingApi.Message])).not.toEqual([]);
    }
    expect(checkMessages(Array(6).fill({ type: 'text', text: 'a' }))).toEqual([expect.stringMatching(/count 6/)]);
  });

  test('the checker knows the quick reply rules: ≤ 13 items, labels ≤ 20, the actions LINE allows there', () => {
    const msg = (items: unknown[]) => ({ type: 'text', text: 'a', quickReply: { items } }) as unknown as messagingApi.Message;
    const item = (action: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'action', action, ...extra });
    const say = (label: string, text = '商品') => item({ type: 'message', label, text });
    expect(checkMessages([msg(Array.from({ length: 13 }, () => say('x'.repeat(20))))])).toEqual([]);
    const cases: Array<[unknown[], RegExp]> = [
      [Array.from({ length: 14 }, () => say('商品')), /quickReply has 14 items/],
      [[], /quickReply has 0 items/],
      [[say('x'.repeat(21))], /label longer than 20/],
      [[item({ type: 'message', text: '商品' })], /label missing/],
      [[say('商品', 'x'.repeat(301))], /text longer than 300/],
      [[say('商品', '')], /text missing/],
      [[{ type: 'button', action: { type: 'message', label: 'a', text: 'a' } }], /type must be action/],
      [[item({ type: 'richmenuswitch', label: 'a', richMenuAliasId: 'x', data: 'a=b' })], /richmenuswitch not allowed/],
      [[item({ type: 'clipboard', label: '複製', clipboardText: 'x'.repeat(1001) })], /clipboardText longer than 1000/],
      [[item({ type: 'postback', label: 'a', data: 'd'.repeat(301) })], /data longer than 300/],
      [[say('商品', '商品')].map((i) => ({ ...i, imageUrl: 'http://example.com/i.png' })), /imageUrl must be https/],
      [[item({ type: 'uri', label: 'a', uri: 'javascript:alert(1)' })], /uri invalid/],
    ];
    for (const [items, re] of cases) expect(checkMessages([msg(items)]).join('; ')).toMatch(re);
    // Camera and location work in quick replies only; in a Flex button they are refused.
    expect(checkMessages([msg([item({ type: 'camera', label: '拍照' }), item({ type: 'location', label: '位置' })])])).toEqual([]);
    const flexButton = (action: Record<string, unknown>) =>
      ({ type: 'flex', altText: 'a', contents: { type: 'bubble', footer: { type: 'box', layout: 'vertical', contents: [{ type: 'button', action }] } } }) as unknown as messagingApi.Message;
    expect(checkMessages([flexButton({ type: 'camera', label: '拍照' })]).join('; ')).toMatch(/camera not allowed/);
    expect(checkMessages([flexButton({ type: 'clipboard', label: '複製', clipboardText: 'TW123' })])).toEqual([]);
    expect(checkMessages([flexButton({ type: 'clipboard', label: '複製' })]).join('; ')).toMatch(/clipboardText missing/);
    expect(checkMessages([flexButton({ type: 'message', text: '庫存' })]).join('; ')).toMatch(/label missing/);
  });

  test('the main answers carry quick replies, so a shopper rarely needs to type', () => {
    const labels = (m: messagingApi.Message) => (m.quickReply?.items ?? []).map((i) => i.action?.label);
    expect(labels(V.catalogMessage([product(1)], 1, 2, 12, CATALOG_PAGE_SIZE, BASE))).toEqual(['➡️ 下一頁', '🛒 購物車', '💳 結帳', '📦 我的訂單', '❓ 怎麼買']);
    expect(labels(V.cartMessage(cart))).toContain('💳 結帳');
    expect(labels(V.orderCreatedMessage(order(), items, PAYMENT_METHODS))).toContain('📦 我的訂單');
    expect(labels(V.helpMessage(false)).length).toBeGreaterThan(2);
    expect(labels(V.welcomeMessage('小美'))).toContain('🛍️ 逛商品');
    // Each button sends a command the parser understands, as if typed.
    for (const m of [V.welcomeMessage(null), V.helpMessage(true), V.cartMessage(cart)]) {
      for (const i of m.quickReply!.items!) {
        const a = i.action as messagingApi.MessageAction;
        if (a.type === 'message') expect(parseCommand(a.text!).kind).not.toBe('unknown');
      }
    }
  });

  test('every template in flex-templates/ is valid JSON and every bubble template is a bubble', () => {
    const files = listTemplateFiles();
    expect(files.length).toBeGreaterThanOrEqual(BUBBLE_TEMPLATES.length);
    for (const name of BUBBLE_TEMPLATES) expect((loadTemplate(name) as { type: string }).type).toBe('bubble');
  });
});

describe('npm run flex:preview', () => {
  test.each(Object.keys(PREVIEWS))('%s renders to a complete Flex container (no placeholder left) within LINE limits', (name) => {
    const c = preview(name)!;
    expect(['bubble', 'carousel']).toContain(c.type);
    const json = JSON.stringify(c);
    expect(json).not.toContain('{{');
    expect(checkMessages([{ type: 'flex', altText: name, contents: c }])).toEqual([]);
  });

  test('an unknown name is not a preview', () => {
    expect(preview('no-such-template')).toBeNull();
  });
});
