import type { messagingApi } from '@line/bot-sdk';
import type { CartView } from '../domain/cart';
import { CATALOG_PAGE_SIZE, Product } from '../domain/catalog';
import type { Order, OrderItems, OrderLine } from '../domain/orders';
import { DEMO_PRODUCTS, demoImageUrl } from '../data/seed';
import type { MemberCard, PointsSummary, WalletSummary } from '../domain/members';
import type { LedgerEntry } from '../domain/members/ledger';
import { PAYMENT_METHODS } from '../gateways/payment-gateway';
import { checkMessages } from '../line/message-limits';
import * as V from '../line/views';
import { renderOwnerNotice } from '../line/notifier';

/**
 * `npm run flex:preview [name]`: the bot's Flex messages rendered from flex-templates/ with demo
 * data, as the JSON that LINE's Flex Message Simulator (https://developers.line.biz/flex-simulator/)
 * takes: paste the printed container there, edit it, then carry the change back into the template.
 * Without a name it lists the names. Pure: no database, no network.
 */

const products: Product[] = DEMO_PRODUCTS.map((p, i) => ({
  id: i + 1,
  sku: p.sku,
  category_id: 1,
  name: p.name,
  description: p.description,
  price: p.price,
  image_url: demoImageUrl(p.image),
  active: true,
  stock_on_hand: p.stock,
  stock_reserved: 0,
}));

const now = new Date();
const order = (status: Order['status'] = 'pending_payment'): Order => ({
  id: 1, order_no: 'L2612011001', line_user_id: 'U0123456789abcdef0123456789abcdef', status, total: 2 * 680 + 450, item_count: 3,
  payment_method: status === 'pending_payment' ? null : 'ecpay-credit', hold_expires_at: new Date(now.getTime() + 30 * 60_000),
  cart_id: 1, cart_version: 1, paid_amount: status === 'pending_payment' ? 0 : 1810, refunded_amount: 0,
  tracking_no: status === 'shipped' ? '7052-1234-5678' : null, created_at: now, paid_at: null, shipped_at: null,
});
const lines: OrderLine[] = [
  { id: 1, order_id: 1, product_id: 1, sku: 'TEA-001', name: products[0]!.name, unit_price: 680, qty: 2, line_total: 1360 },
  { id: 2, order_id: 1, product_id: 4, sku: 'SNK-001', name: products[3]!.name, unit_price: 450, qty: 1, line_total: 450 },
];
const items: OrderItems = {
  lines,
  adjustments: [
    { id: 1, order_id: 1, kind: 'shipping', label: '超商取貨運費', amount: 60, details: null },
    { id: 2, order_id: 1, kind: 'tier-discount', label: '銀卡 95 折', amount: -91, details: null },
  ],
};
const cart: CartView = {
  cartId: 1, version: 3, subtotal: 1810, count: 3,
  lines: lines.map((l) => ({ product_id: l.product_id, qty: l.qty, sku: l.sku, name: l.name, price: l.unit_price, active: true, available: 20 })),
};

const entry = (id: number, kind: string, amount: number, orderNo: string | null): LedgerEntry => ({
  id, account_id: 1, kind, amount, balance_after: 0, shortfall: 0, source: `demo:${id}`, details: orderNo ? { orderNo } : null, created_at: now,
});
const tiers = [
  { name: '普通', minPoints: 0, discountPercent: 0 },
  { name: '銀卡', minPoints: 1000, discountPercent: 5 },
  { name: '金卡', minPoints: 5000, discountPercent: 10 },
];
const points: PointsSummary = {
  balance: 1234, earned: 1450, standing: { tier: tiers[1]!, next: { tier: tiers[2]!, needed: 3550 } },
  entries: [entry(4, 'earn', 18, 'L2612011001'), entry(3, 'redeem', -200, 'L2612011000'), entry(2, 'earn', 12, 'L2611301009')],
};
const wallet: WalletSummary = {
  balance: 1580, topupAmounts: [500, 1000, 2000],
  entries: [entry(9, 'pay', -680, 'L2612011001'), entry(8, 'charge', -120, null), entry(7, 'topup', 2000, null)],
};
const card: MemberCard = {
  displayName: '小美', standing: { ...points.standing, earned: 1450 }, points: 1234, wallet: 1580,
  code: { code: '4821093356172048', qrRef: 'x'.repeat(43), expiresAt: new Date(now.getTime() + 15 * 60_000) },
};

export const PREVIEWS: Record<string, () => messagingApi.Message> = {
  catalog: () => V.catalogMessage(products.slice(0, CATALOG_PAGE_SIZE), 1, 1, products.length, CATALOG_PAGE_SIZE, 'https://shop.example.com'),
  cart: () => V.cartMessage(cart),
  'order-created': () => V.orderCreatedMessage(order(), items, PAYMENT_METHODS),
  'orders-list': () => V.ordersListMessage([order(), order('paid'), order('shipped')]),
  'order-detail': () => V.orderDetailMessage(order(), items, PAYMENT_METHODS),
  receipt: () => V.receiptMessage(order('paid'), items, 'ecpay-credit', false),
  'owner-paid': () => V.ownerPaidMessage(order('paid'), items, 'sinopac-atm'),
  'virtual-account': () =>
    V.virtualAccountMessage({ orderNo: 'L2612011001', amount: 1810, bankCode: '807', account: '99922530175613', deadline: order().hold_expires_at, otherMethods: V.paymentButtons(order(), PAYMENT_METHODS) }),
  'cvs-code': () => V.cvsCodeMessage({ orderNo: 'L2612011001', amount: 1810, code: 'LLL24120112345', deadline: order().hold_expires_at }),
  'admin-login': () => V.adminLoginMessage('https://shop.example.com/admin/login/Xq3vJ0m2bY7kR9tLs4Wc8pZ1nD6fH5gA2eK0uV7iQ3o', new Date(Date.now() + 10 * 60_000)),
  'pay-link': () => V.payLinkMessage({ orderNo: 'L2612011001', amount: 1810, method: 'ecpay-credit', url: 'https://shop.example.com/payments/ecpay/checkout/3q2-7wQm9b1Kx0Zr4TgL8vYc' }),
  'order-created-points': () => V.orderCreatedMessage(order(), items, [...PAYMENT_METHODS, 'wallet'], [V.redeemButton('L2612011001', { points: 905, amount: 905 })]),
  points: () => V.pointsMessage(points, 1, '每消費 NT$100 累積 1 點；結帳時 1 點可折抵 NT$1。'),
  wallet: () => V.walletMessage(wallet),
  topup: () => V.topupMessage({ id: 42, amount: 1000 }, PAYMENT_METHODS),
  'member-card': () => V.memberCardMessage(card, 1, `https://shop.example.com/member/qr/${'x'.repeat(43)}.png`),
  // Pushed on a state change (the notice bubble, flex-templates/notice.json).
  reminder: () => V.paymentReminderMessage(order(), null, PAYMENT_METHODS),
  shipped: () => V.shippedMessage('L2612011001', '903221488720', '黑貓宅急便'),
  completed: () => V.completedMessage('L2612011001'),
  arrived: () => V.arrivedMessage('L2612011001', '鑫忠孝門市', '臺北市中正區忠孝西路一段50號1樓', new Date(Date.now() + 7 * 86_400_000)),
  returned: () => V.returnedMessage('L2612011001'),
  'owner-shipment-created': () =>
    renderOwnerNotice(
      { type: 'shipment-created', shipment: { orderNo: 'L2612011001', subType: 'UNIMARTC2C', storeName: '鑫忠孝門市', shipmentNo: 'C9680734', validationNo: '4551', dropOffCode: 'C96807344551', dropOffBy: new Date(Date.now() + 5 * 86_400_000) } },
      { order: (no) => `https://shop.example.com/admin/orders/${no}` },
    )[0]!,
  refunded: () => V.refundedMessage('L2612011001', 680, 'ecpay-credit', false),
  'owner-new-order': () => V.ownerNewOrderMessage(order(), items, '小美', 'https://shop.example.com/admin/orders/L2612011001'),
  'owner-cancelled': () => V.ownerOrderClosedMessage(order('cancelled'), 'cancelled', { kind: 'shopper', name: '小美' }, 'https://shop.example.com/admin/orders/L2612011001'),
  'owner-low-stock': () => V.ownerLowStockMessage({ id: 1, sku: 'TEA-001', name: products[0]!.name }, 5, 5),
  'owner-sold-out': () => V.ownerSoldOutMessage({ id: 1, sku: 'TEA-001', name: products[0]!.name }),
  'daily-summary': () =>
    V.dailySummaryMessage(
      {
        date: '2026-12-04', orders: 12, paid: 9, amount: 15_320,
        byMethod: [{ method: 'sinopac-atm', orders: 5, amount: 9_100 }, { method: 'ecpay-credit', orders: 4, amount: 6_220 }],
        topProducts: products.slice(0, 3).map((p, i) => ({ productId: p.id, name: p.name, qty: 7 - 2 * i, amount: (7 - 2 * i) * p.price })),
        lowStock: [{ id: 4, sku: products[3]!.sku, name: products[3]!.name, available: 2 }],
        lowStockCount: 1, threshold: 5, pushesToday: 31, pushesThisMonth: 412,
      },
      { limit: 200, used: 412 },
      '錢包儲值 2 筆，NT$1,500；發出點數 153 點',
    ),
};

/** The Flex container of a preview, or null for a name that is not one. */
export function preview(name: string): messagingApi.FlexContainer | null {
  const build = PREVIEWS[name];
  if (!build) return null;
  const m = build();
  const problems = checkMessages([m]);
  if (problems.length) throw new Error(`preview ${name} breaks LINE limits: ${problems.join('; ')}`);
  if (m.type !== 'flex') throw new Error(`preview ${name} is not a Flex message`);
  return (m as messagingApi.FlexMessage).contents;
}

function main(): void {
  const name = process.argv[2];
  const container = name ? preview(name) : null;
  if (!container) {
    if (name) console.error(`no preview named ${name}`);
    console.log(`usage: npm run flex:preview <name>\nnames: ${Object.keys(PREVIEWS).join(', ')}`);
    process.exitCode = name ? 1 : 0;
    return;
  }
  console.log(JSON.stringify(container, null, 2));
}

if (require.main === module) main();
