import type { messagingApi } from '@line/bot-sdk';
import type { CartView } from '../domain/cart';
import { available, Product } from '../domain/catalog';
import type { MemberCard, PointsSummary, WalletSummary } from '../domain/members';
import type { LedgerEntry } from '../domain/members/ledger';
import type { ClosedBy, MessageQuota, PaymentInstructions, StockProduct, TopupInstructions } from '../domain/notices';
import { productImageUrl } from '../domain/photo-urls';
import type { DailyFigures } from '../domain/reports';
import type { Order, OrderItems } from '../domain/orders';
import { deliveryLabel, maskPhone, orderDelivery, type DeliveryChoices, type DeliveryDetails, type OrderDeliveryColumns, type ShipmentView } from '../domain/delivery';
import type { PaymentAttempt, ShopMethod, WalletTopup } from '../domain/payments/types';
import type { PaymentMethod } from '../gateways/payment-gateway';
import { COMMAND, DELIVERY_TEXT, LABEL, M, METHOD_LABEL, QUICK, SHIPMENT, SHIPMENT_STATE_LABEL, STATUS_LABEL, STORE_CHANGE, T, taipeiTime, twd } from '../texts';
import { findCarrier } from './carriers';
import { postbackData } from './command-parser';
import { render } from './flex-renderer';

/** Builds every message the bot sends, from flex-templates/ and texts.ts. Pure: no I/O. */

type Message = messagingApi.Message;
type FlexComponent = messagingApi.FlexComponent;

export const text = (t: string): messagingApi.TextMessage => ({ type: 'text', text: t.length > 5000 ? t.slice(0, 4999) + '…' : t });

/** A bubble with no buttons loses its footer: LINE allows an empty box, but the empty block would still take its padding. */
function withoutEmptyFooter(b: messagingApi.FlexBubble): messagingApi.FlexBubble {
  if (!b.footer || (b.footer.type === 'box' && b.footer.contents.length > 0)) return b;
  const { footer: _footer, ...rest } = b;
  return rest;
}

const flex = (altText: string, contents: messagingApi.FlexContainer): messagingApi.FlexMessage => ({
  type: 'flex',
  altText: altText.length > 1500 ? altText.slice(0, 1499) + '…' : altText,
  contents: contents.type === 'bubble' ? withoutEmptyFooter(contents) : { ...contents, contents: contents.contents.map(withoutEmptyFooter) },
});

const clip = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

// ---------------------------------------------------------------------------------------------
// Quick replies: the buttons under the last message, so a shopper rarely has to type. Each sends
// its command as if typed (the chat shows it), except "next page", a postback.

export type QuickItem = keyof typeof COMMAND;

function quickItem(kind: QuickItem): messagingApi.QuickReplyItem {
  return { type: 'action', action: { type: 'message', label: QUICK[kind], text: COMMAND[kind] } };
}

export function quickReply(kinds: readonly QuickItem[], extra: messagingApi.QuickReplyItem[] = []): messagingApi.QuickReply {
  return { items: [...extra, ...kinds.map(quickItem)] };
}

/** The message with quick reply buttons (LINE shows them under the last message of a reply only). */
export function withQuickReply<M extends Message>(m: M, kinds: readonly QuickItem[], extra: messagingApi.QuickReplyItem[] = []): M {
  return { ...m, quickReply: quickReply(kinds, extra) };
}

const SHOPPER_QUICK: readonly QuickItem[] = ['menu', 'cart', 'orders', 'help'];
const OWNER_QUICK: readonly QuickItem[] = ['ownerToday', 'ownerToShip', 'ownerLowStock', 'menu'];

/** The follow greeting: how to shop, in a few lines, with the buttons to start. */
export function welcomeMessage(name: string | null): Message {
  return withQuickReply(text(T.welcome(name)), ['menu', 'cart', 'orders', 'help']);
}

export function helpMessage(isOwner: boolean): Message {
  return isOwner ? withQuickReply(text(`${T.help}\n\n${T.ownerHelp}`), [...OWNER_QUICK, 'help']) : withQuickReply(text(T.help), ['menu', 'cart', 'checkout', 'orders']);
}

/** What the bot says to text it does not understand: the usual way on. */
export function unknownMessage(): Message {
  return withQuickReply(text(T.unknown), SHOPPER_QUICK);
}

/** The catalog carousel; photos are published under publicBaseUrl (uploaded ones, or the placeholder). */
export function catalogMessage(products: Product[], page: number, pages: number, total: number, pageSize: number, publicBaseUrl: string): Message {
  if (products.length === 0) return withQuickReply(text(T.catalogEmpty), ['orders', 'help']);
  const bubbles: messagingApi.FlexBubble[] = products.map((p) => {
    const left = available(p);
    const buttons: FlexComponent[] = [
      left > 0
        ? render('postback-button', { style: 'primary', label: T.addToCart, data: postbackData({ action: 'add', productId: p.id }) })
        : render('postback-button', { style: 'secondary', label: T.soldOut, data: postbackData({ action: 'menu', page }) }),
    ];
    return render('product', {
      imageUrl: productImageUrl(publicBaseUrl, p),
      name: clip(p.name, 60),
      description: clip(p.description || ' ', 120),
      price: twd(p.price),
      stockText: left > 0 ? T.stockLeft(left) : T.soldOut,
      stockColor: left > 0 ? '#888888' : '#E74C3C',
      skuText: `#${p.id} ・ ${p.sku}`,
      buttons,
    });
  });
  if (page < pages) {
    const from = page * pageSize + 1;
    bubbles.push(
      render('catalog-more', {
        title: T.moreProducts,
        hint: T.moreProductsHint(from, Math.min(total, from + pageSize - 1), total),
        buttonLabel: T.nextPage,
        data: postbackData({ action: 'menu', page: page + 1 }),
      }),
    );
  }
  const next: messagingApi.QuickReplyItem[] =
    page < pages ? [{ type: 'action', action: { type: 'postback', label: QUICK.nextPage, data: postbackData({ action: 'menu', page: page + 1 }), displayText: QUICK.nextPage } }] : [];
  return withQuickReply(flex(T.catalogAlt(page, pages), { type: 'carousel', contents: bubbles }), ['cart', 'checkout', 'orders', 'help'], next);
}

export function cartMessage(cart: CartView): Message {
  if (cart.lines.length === 0) return withQuickReply(text(T.cartEmpty), ['menu', 'orders', 'help']);
  const lines = cart.lines.map((l) =>
    render('cart-line', {
      name: clip(l.name, 40) + (l.active ? '' : `（${T.soldOut}）`),
      lineTotal: twd(l.price * l.qty),
      unitText: `${twd(l.price)} ・ ${l.available > 0 ? T.stockLeft(l.available) : T.soldOut}`,
      qty: String(l.qty),
      decData: postbackData({ action: 'dec', productId: l.product_id }),
      incData: postbackData({ action: 'inc', productId: l.product_id }),
    }),
  );
  const m = flex(
    T.cartAlt(cart.count, cart.subtotal),
    render('cart', {
      title: T.cartTitle,
      lines,
      subtotalLabel: T.subtotal,
      subtotal: twd(cart.subtotal),
      checkoutLabel: T.checkout,
      checkoutData: postbackData({ action: 'checkout', cartVersion: cart.version }),
      continueLabel: T.continueShopping,
      menuData: postbackData({ action: 'menu', page: 1 }),
    }),
  );
  return withQuickReply(m, ['menu', 'checkout', 'orders', 'help']);
}

/** An order's goods, then its fees and discounts (a discount shows as −NT$…). */
const lineRows = ({ lines, adjustments }: OrderItems): FlexComponent[] => [
  ...lines.map((l) => render('order-line', { text: `${clip(l.name, 40)} × ${l.qty}`, lineTotal: twd(l.line_total) })),
  ...adjustments.map((a) => render('order-line', { text: clip(a.label, 40), lineTotal: a.amount < 0 ? `−${twd(-a.amount)}` : twd(a.amount) })),
];

export function paymentButtons(order: Pick<Order, 'order_no'>, methods: readonly ShopMethod[], primaryFirst = true): FlexComponent[] {
  return methods.map((m, i) =>
    render('postback-button', {
      style: i === 0 && primaryFirst ? 'primary' : 'secondary',
      label: METHOD_LABEL[m] ?? m,
      data: postbackData({ action: 'pay', orderNo: order.order_no, method: m }),
    }),
  );
}

/**
 * What an unpaid order's bubble offers: the payment methods once its delivery details are complete,
 * else the way to them (the delivery choices when given, or one button that asks for them).
 */
function orderButtons(order: Order, methods: readonly ShopMethod[], choices?: DeliveryChoices | null): FlexComponent[] {
  if (!needsDelivery(order)) return paymentButtons(order, methods);
  return choices ? deliveryChoiceButtons(choices) : [fillDeliveryButton(order.order_no, 'primary')];
}

const needsDelivery = (order: Order) => order.status === 'pending_payment' && !(order as Order & OrderDeliveryColumns).delivery_ready_at;

const fillDeliveryButton = (orderNo: string, style: 'primary' | 'secondary' | 'link') =>
  render('postback-button', { style, label: DELIVERY_TEXT.fillDetails, data: postbackData({ action: 'dlv', orderNo, method: null }) });

/** `extra`: buttons above the payment methods (e.g. redeeming points); `choices`: the delivery methods, while the details are missing. */
export function orderCreatedMessage(order: Order, items: OrderItems, methods: readonly ShopMethod[], extra: FlexComponent[] = [], choices: DeliveryChoices | null = null): Message {
  const cancel = render('postback-button', { style: 'link', label: T.cancelOrder, data: postbackData({ action: 'cancel', orderNo: order.order_no }) });
  const delivery = needsDelivery(order);
  const m = flex(
    T.orderCreatedAlt(order.order_no, order.total),
    render('order-created', {
      title: T.orderCreatedTitle,
      orderNo: order.order_no,
      lines: [...lineRows(items), ...deliveryRows(order)],
      totalLabel: T.total,
      total: twd(order.total),
      holdText: T.holdUntil(order.hold_expires_at),
      prompt: delivery ? `${DELIVERY_TEXT.chooseTitle}：${DELIVERY_TEXT.choosePrompt}` : methods.length ? T.choosePayment : T.noPaymentMethods,
      buttons: [...extra, ...orderButtons(order, methods, choices), cancel],
    }),
  );
  return withQuickReply(m, ['orders', 'menu', 'help']);
}

/** The delivery methods as buttons: the shopper's last details first (one tap completes), then each method with its fee. */
function deliveryChoiceButtons(c: DeliveryChoices): FlexComponent[] {
  const buttons: FlexComponent[] = [];
  if (c.last) {
    buttons.push(render('postback-button', { style: 'primary', label: DELIVERY_TEXT.useLastLabel, data: postbackData({ action: 'dlv', orderNo: c.order.order_no, method: 'last' }) }));
  }
  c.options.forEach((o, i) =>
    buttons.push(
      render('postback-button', {
        style: !c.last && i === 0 ? 'primary' : 'secondary',
        label: clip(`${deliveryLabel(o)}（${o.effectiveFee === 0 ? DELIVERY_TEXT.free : twd(o.effectiveFee)}）`, 20),
        data: postbackData({ action: 'dlv', orderNo: c.order.order_no, method: o.key }),
      }),
    ),
  );
  return buttons;
}

/** One line summing up delivery details: 7-ELEVEN 取貨・王小美 0912***678・台北信義店. */
export function deliverySummary(d: DeliveryDetails): string {
  const where = d.method === 'cvs' ? `${d.storeName ?? ''}` : `${d.recipientAddress ?? ''}`;
  return `${deliveryLabel(d)}・${d.recipientName} ${maskPhone(d.recipientPhone)}・${where}`;
}

/** The delivery methods to choose from (after 結帳, or when a payment method was tapped too early). */
export function deliveryChoiceMessage(c: DeliveryChoices): Message {
  const rows: FlexComponent[] = [row(LABEL.order, c.order.order_no), para(DELIVERY_TEXT.choosePrompt)];
  if (c.last) rows.push(para(DELIVERY_TEXT.useLast(deliverySummary(c.last))));
  return notice(DELIVERY_TEXT.linkAlt(c.order.order_no), { title: DELIVERY_TEXT.chooseTitle, rows, buttons: deliveryChoiceButtons(c) });
}

/** The button to the delivery details page of one method. */
export function deliveryLinkMessage(orderNo: string, method: string, url: string, expiresAt: Date): Message {
  return notice(DELIVERY_TEXT.linkAlt(orderNo), {
    title: DELIVERY_TEXT.linkTitle(method),
    rows: [row(LABEL.order, orderNo), para(DELIVERY_TEXT.linkBody(taipeiTime(expiresAt)))],
    buttons: [render('uri-button', { style: 'primary', label: DELIVERY_TEXT.linkButton, uri: url })],
  });
}

/** The pickup store closed: the button to the store-change page (ECPay's map for the same chain). */
export function storeClosedShopperMessage(orderNo: string, chain: string, storeName: string, url: string, expiresAt: Date): Message {
  return notice(STORE_CHANGE.closedAlt(orderNo), {
    title: STORE_CHANGE.closedTitle,
    rows: [row(LABEL.order, orderNo), para(STORE_CHANGE.closedBody(chain, storeName, taipeiTime(expiresAt)))],
    buttons: [render('uri-button', { style: 'primary', label: STORE_CHANGE.button, uri: url })],
  });
}

/** An order's delivery details as bubble rows (masked phone), and its shipment when there is one. */
export function deliveryRows(order: Order, shipment: ShipmentView | null = null): FlexComponent[] {
  const d = orderDelivery(order as Order & OrderDeliveryColumns);
  if (!d) return [];
  const rows: FlexComponent[] = [
    ({ type: 'separator', margin: 'md' } as FlexComponent),
    row(DELIVERY_TEXT.method, deliveryLabel(d)),
    row(DELIVERY_TEXT.recipient, `${d.recipientName} ${maskPhone(d.recipientPhone)}`),
  ];
  if (d.method === 'cvs') rows.push(row(DELIVERY_TEXT.store, `${d.storeName ?? ''}\n${d.storeAddress ?? ''}`));
  else rows.push(row(DELIVERY_TEXT.address, `${d.recipientZip ? `${d.recipientZip} ` : ''}${d.recipientAddress ?? ''}`));
  if (shipment) {
    if (shipment.shipment_no) rows.push(row(DELIVERY_TEXT.shipment, shipment.validation_no ? `${shipment.shipment_no} ${shipment.validation_no}` : shipment.shipment_no));
    rows.push(row(DELIVERY_TEXT.shipmentState, SHIPMENT_STATE_LABEL[shipment.status] ?? shipment.status));
  }
  return rows;
}

/** The delivery details are complete: the order with them, and the payment methods. */
export function deliveryReadyMessage(order: Order, items: OrderItems, delivery: DeliveryDetails, methods: readonly ShopMethod[], storeChosen = false): Message {
  const cancel = render('postback-button', { style: 'link', label: T.cancelOrder, data: postbackData({ action: 'cancel', orderNo: order.order_no }) });
  const change = render('postback-button', { style: 'link', label: DELIVERY_TEXT.changeDetails, data: postbackData({ action: 'dlv', orderNo: order.order_no, method: null }) });
  const prompt = methods.length ? T.choosePayment : T.noPaymentMethods;
  return withQuickReply(
    flex(
      DELIVERY_TEXT.readyAlt(order.order_no),
      render('order-created', {
        title: DELIVERY_TEXT.readyTitle,
        orderNo: order.order_no,
        lines: [...lineRows(items), ...deliveryRows({ ...order, delivery_ready_at: order.delivery_ready_at ?? new Date() } as Order)],
        totalLabel: T.total,
        total: twd(order.total),
        holdText: T.holdUntil(order.hold_expires_at),
        prompt: storeChosen && delivery.method === 'cvs' ? `${DELIVERY_TEXT.storeChosen(deliveryLabel(delivery), delivery.storeName ?? '', delivery.storeAddress ?? '')}\n${prompt}` : prompt,
        buttons: [...paymentButtons(order, methods), change, cancel],
      }),
    ),
    ['orders', 'menu', 'help'],
  );
}

export function ordersListMessage(orders: Order[]): Message {
  if (orders.length === 0) return text(T.ordersEmpty);
  return flex(
    T.ordersAlt(orders.length),
    render('orders-list', {
      title: T.ordersTitle,
      rows: orders.map((o) =>
        render('order-row', {
          orderNo: o.order_no,
          summary: `${STATUS_LABEL[o.status] ?? o.status} ・ ${twd(o.total)} ・ ${taipeiTime(o.created_at)}`,
          viewLabel: T.viewOrder,
          data: postbackData({ action: 'order', orderNo: o.order_no }),
        }),
      ),
    }),
  );
}

const STATUS_COLOR: Record<string, string> = {
  pending_payment: '#E67E22',
  paid: '#06C755',
  shipped: '#2980B9',
  at_store: '#2980B9',
  returned: '#E67E22',
  completed: '#06C755',
  paid_no_stock: '#E74C3C',
};

export function orderDetailMessage(order: Order, items: OrderItems, methods: readonly ShopMethod[], extra: FlexComponent[] = [], shipment: ShipmentView | null = null): Message {
  const notes: FlexComponent[] = [];
  if (order.status === 'pending_payment') notes.push(render('note', { text: T.holdUntil(order.hold_expires_at) }));
  if (order.payment_method) notes.push(render('note', { text: METHOD_LABEL[order.payment_method] ?? order.payment_method }));
  if (order.tracking_no) notes.push(render('note', { text: T.trackingNo(order.tracking_no) }));
  const buttons =
    order.status === 'pending_payment'
      ? [
          ...extra,
          ...orderButtons(order, methods),
          render('postback-button', { style: 'link', label: T.cancelOrder, data: postbackData({ action: 'cancel', orderNo: order.order_no }) }),
        ]
      : [render('postback-button', { style: 'link', label: T.continueShopping, data: postbackData({ action: 'menu', page: 1 }) })];
  return flex(
    T.orderDetailAlt(order.order_no, STATUS_LABEL[order.status] ?? order.status),
    render('order-detail', {
      orderNo: order.order_no,
      statusText: STATUS_LABEL[order.status] ?? order.status,
      statusColor: STATUS_COLOR[order.status] ?? '#888888',
      lines: lineRows(items),
      totalLabel: T.total,
      total: twd(order.total),
      // Under the total: how and to whom it ships (and the shipment), then the notes.
      notes: [...deliveryRows(order, shipment), ...notes],
      buttons,
    }),
  );
}

export function receiptMessage(order: Order, items: OrderItems, method: string, late: boolean, pointsEarned = 0): Message {
  return flex(
    T.receiptAlt(order.order_no, order.total),
    render('receipt', {
      title: T.receiptTitle,
      orderLabel: LABEL.order,
      orderNo: order.order_no,
      methodLabel: LABEL.method,
      method: METHOD_LABEL[method] ?? method,
      amountLabel: T.amount,
      amount: twd(order.total),
      lines: lineRows(items),
      thanks: [late ? T.lateRereserved : null, T.receiptThanks, pointsEarned > 0 ? M.receiptPoints(pointsEarned) : null].filter(Boolean).join('\n'),
    }),
  );
}

export function ownerPaidMessage(order: Order, items: OrderItems, method: string, notes: string[] = [], orderUrl: string | null = null): Message {
  return flex(
    T.ownerPaidAlt(order.order_no, order.total),
    render('owner-paid', {
      title: T.ownerPaidTitle,
      orderLabel: LABEL.order,
      orderNo: order.order_no,
      methodLabel: LABEL.method,
      method: METHOD_LABEL[method] ?? method,
      amountLabel: T.amount,
      amount: twd(order.total),
      lines: lineRows(items),
      notes: notes.map((n) => render('note', { text: n })),
      buttons: backOfficeButtons(orderUrl),
    }),
  );
}

export function virtualAccountMessage(args: {
  orderNo: string; amount: number; bankCode: string; account: string; deadline: Date; otherMethods: FlexComponent[];
}): Message {
  return flex(
    T.atmAlt(args.amount, args.deadline),
    render('payment-info', {
      title: T.atmTitle,
      orderNo: args.orderNo,
      rows: [
        render('info-row', { label: T.bankCode, value: args.bankCode }),
        render('info-row', { label: T.virtualAccount, value: args.account }),
        render('info-row', { label: T.amount, value: twd(args.amount) }),
        render('info-row', { label: T.deadline, value: taipeiTime(args.deadline) }),
      ],
      hint: T.switchMethodHint,
      buttons: args.otherMethods,
    }),
  );
}

export function cvsCodeMessage(args: { orderNo: string; amount: number; code: string; deadline: Date }): Message {
  return flex(
    T.cvsAlt(args.amount, args.deadline),
    render('payment-info', {
      title: T.cvsTitle,
      orderNo: args.orderNo,
      rows: [
        render('info-row', { label: T.cvsCode, value: args.code }),
        render('info-row', { label: T.amount, value: twd(args.amount) }),
        render('info-row', { label: T.deadline, value: taipeiTime(args.deadline) }),
      ],
      hint: T.cvsHint,
      buttons: [],
    }),
  );
}

export function payLinkMessage(args: { orderNo: string; amount: number; method: string; url: string }): Message {
  const label = METHOD_LABEL[args.method] ?? args.method;
  return flex(
    T.payLinkAlt(label, args.amount),
    render('pay-link', {
      title: T.payLinkTitle,
      orderNo: args.orderNo,
      methodLabel: LABEL.method,
      method: label,
      amountLabel: T.amount,
      amount: twd(args.amount),
      hint: T.switchMethodHint,
      buttonLabel: T.payNow,
      url: args.url,
    }),
  );
}

/** How to pay an attempt: ATM account, convenience-store code, or a button to the bank's page. */
export function paymentInstructionsMessage({ order, attempt, otherMethods }: PaymentInstructions): Message {
  return attemptInstructionsMessage(order.order_no, attempt, paymentButtons(order, otherMethods));
}

/** How to pay a wallet top-up's attempt (the same kinds of instructions as an order's). */
export function topupInstructionsMessage({ topup, attempt, otherMethods }: TopupInstructions): Message {
  return attemptInstructionsMessage(topupRef(topup), attempt, topupButtons(topup, otherMethods));
}

function attemptInstructionsMessage(ref: string, attempt: PaymentAttempt, otherButtons: FlexComponent[]): Message {
  const d = attempt.details as { kind?: string; bankCode?: string; account?: string; deadline?: string; url?: string; paymentNo?: string };
  if (d.kind === 'virtual-account' || d.kind === 'ecpay-atm-code') {
    return virtualAccountMessage({
      orderNo: ref,
      amount: attempt.amount,
      bankCode: d.bankCode!,
      account: d.account!,
      deadline: new Date(d.deadline!),
      otherMethods: otherButtons,
    });
  }
  if (d.kind === 'ecpay-cvs-code') {
    return cvsCodeMessage({ orderNo: ref, amount: attempt.amount, code: d.paymentNo!, deadline: new Date(d.deadline!) });
  }
  return payLinkMessage({ orderNo: ref, amount: attempt.amount, method: attempt.method, url: d.url! });
}

// ---------------------------------------------------------------------------------------------
// Members: points, wallet, top-ups, member card.

const TIER_COLORS = ['#7F8C8D', '#99A3A4', '#D4AC0D', '#5DADE2', '#8E44AD', '#C0392B'];
const tierColor = (index: number) => TIER_COLORS[Math.min(index, TIER_COLORS.length - 1)]!;

const topupRef = (topup: Pick<WalletTopup, 'id'>) => `${LABEL.topupRef}${topup.id}`;

function topupButtons(topup: Pick<WalletTopup, 'id'>, methods: readonly PaymentMethod[]): FlexComponent[] {
  return methods.map((m, i) =>
    render('postback-button', { style: i === 0 ? 'primary' : 'secondary', label: METHOD_LABEL[m] ?? m, data: postbackData({ action: 'tpay', topupId: topup.id, method: m }) }),
  );
}

const button = (style: 'primary' | 'secondary' | 'link', label: string, data: string) => render('postback-button', { style, label, data });

/** 「用 N 點折抵 NT$M」 on an unpaid order. */
export function redeemButton(orderNo: string, offer: { points: number; amount: number }): FlexComponent {
  return button('secondary', M.redeemButton(offer.points, offer.amount), postbackData({ action: 'redeem', orderNo }));
}

/** A ledger entry as a row: date, what, which order; the signed amount. */
function entryRows(entries: LedgerEntry[], money: boolean): FlexComponent[] {
  if (entries.length === 0) return [render('note', { text: M.noEntries })];
  return entries.map((e) => {
    const orderNo = typeof e.details?.orderNo === 'string' ? e.details.orderNo : null;
    return render('info-row', { label: M.entryLabel(e.created_at, e.kind, orderNo), value: M.entryValue(e.amount, money) });
  });
}

export function pointsMessage(s: PointsSummary, tierIndex: number, hint: string): Message {
  const { tier, next } = s.standing;
  return flex(
    M.pointsAlt(s.balance, tier.name),
    render('ledger', {
      color: tierColor(tierIndex),
      title: M.pointsTitle,
      subtitle: `${M.tierLabel}：${M.tierValue(tier.name, tier.discountPercent)}`,
      balanceLabel: M.pointsLabel,
      balance: M.points(s.balance),
      notes: [M.earnedLastYear(s.earned), next ? M.nextTier(next.tier.name, next.needed) : M.topTier, hint].map((t) => render('note', { text: t })),
      rows: entryRows(s.entries, false),
      buttons: [button('primary', M.memberButton, postbackData({ action: 'member' })), button('secondary', M.walletButton, postbackData({ action: 'wallet' }))],
    }),
  );
}

export function walletMessage(w: WalletSummary): Message {
  return flex(
    M.walletAlt(w.balance),
    render('ledger', {
      color: '#06C755',
      title: M.walletTitle,
      subtitle: M.walletHint,
      balanceLabel: M.balanceLabel,
      balance: twd(w.balance),
      notes: [],
      rows: entryRows(w.entries, true),
      buttons: w.topupAmounts.map((a, i) => button(i === 0 ? 'primary' : 'secondary', M.topupButton(a), postbackData({ action: 'topup', amount: a }))),
    }),
  );
}

/** A top-up request: its amount and the bank methods to pay it with. */
export function topupMessage(topup: Pick<WalletTopup, 'id' | 'amount'>, methods: readonly PaymentMethod[]): Message {
  return flex(
    M.topupAlt(topup.amount),
    render('payment-info', {
      title: M.topupTitle,
      orderNo: topupRef(topup),
      rows: [render('info-row', { label: T.amount, value: twd(topup.amount) })],
      hint: M.topupPrompt,
      buttons: topupButtons(topup, methods),
    }),
  );
}

/** The member card; the QR picture only where LINE can fetch it (an https URL), the digits always. */
export function memberCardMessage(card: MemberCard, tierIndex: number, qrUrl: string | null): Message {
  const { tier, next } = card.standing;
  return flex(
    M.cardAlt(tier.name),
    render('member-card', {
      color: tierColor(tierIndex),
      title: M.cardTitle,
      subtitle: card.displayName ? `${clip(card.displayName, 30)}・${tier.name}` : tier.name,
      qr: qrUrl ? [render('qr-image', { url: qrUrl })] : [],
      codeLabel: M.codeLabel,
      code: M.code(card.code.code),
      validUntil: M.codeValidUntil(card.code.expiresAt),
      rows: [
        render('info-row', { label: M.tierLabel, value: M.tierValue(tier.name, tier.discountPercent) }),
        render('info-row', { label: M.pointsLabel, value: M.points(card.points) }),
        render('info-row', { label: M.balanceLabel, value: twd(card.wallet) }),
        render('note', { text: next ? M.nextTier(next.tier.name, next.needed) : M.topTier }),
      ],
      hint: M.cardHint,
      buttons: [
        button('primary', M.refreshCode, postbackData({ action: 'member' })),
        button('secondary', M.walletButton, postbackData({ action: 'wallet' })),
        button('secondary', M.pointsButton, postbackData({ action: 'points' })),
      ],
    }),
  );
}

/** The owner's one-time login button to the back office (`後台`). */
export function adminLoginMessage(url: string, expiresAt: Date): Message {
  return flex(
    T.adminLinkAlt,
    render('admin-login', { title: T.adminLinkTitle, body: T.adminLinkBody(expiresAt), hint: T.adminLinkHint, buttonLabel: T.adminLinkButton, url }),
  );
}

// ---------------------------------------------------------------------------------------------
// Notices pushed on a state change: one bubble each (a title, facts, buttons).

const COLOR = { info: '#111111', good: '#06C755', warn: '#E67E22', bad: '#E74C3C' } as const;

const row = (label: string, value: string) => render('info-row', { label, value: clip(value, 200) });
const para = (t: string) => render('paragraph', { text: clip(t, 2000) });

function notice(alt: string, v: { title: string; color?: keyof typeof COLOR; subtitle?: string; rows: FlexComponent[]; buttons?: FlexComponent[] }): messagingApi.FlexMessage {
  return flex(
    alt,
    render('notice', {
      title: v.title,
      titleColor: COLOR[v.color ?? 'info'],
      subtitle: v.subtitle ? [render('note', { text: v.subtitle })] : [],
      rows: v.rows,
      buttons: v.buttons ?? [],
    }),
  );
}

/** The back office's page of an order, where there is one. */
function backOfficeButtons(orderUrl: string | null): FlexComponent[] {
  return orderUrl ? [render('uri-button', { style: 'link', label: T.viewInBackOffice, uri: orderUrl })] : [];
}

const viewOrderButton = (orderNo: string) => render('postback-button', { style: 'secondary', label: T.viewOrder, data: postbackData({ action: 'order', orderNo }) });

/** The shopper's reminder: still unpaid, the amount, the deadline, and a way to pay right now. */
export function paymentReminderMessage(order: Order, instructions: PaymentInstructions | null, methods: readonly ShopMethod[]): Message {
  const rows = [row(LABEL.order, order.order_no), row(LABEL.amount, twd(order.total)), row(LABEL.deadline, taipeiTime(order.hold_expires_at)), para(T.reminderBody)];
  const buttons: FlexComponent[] = [];
  const attempt = instructions?.attempt;
  const d = (attempt?.details ?? {}) as { kind?: string; bankCode?: string; account?: string; url?: string; paymentNo?: string };
  if (attempt && (d.kind === 'virtual-account' || d.kind === 'ecpay-atm-code') && d.account) {
    rows.push(row(T.bankCode, d.bankCode ?? ''), row(T.virtualAccount, d.account));
    buttons.push(render('clipboard-button', { style: 'primary', label: T.copyAccount, clipboardText: d.account }));
  } else if (attempt && d.kind === 'ecpay-cvs-code' && d.paymentNo) {
    rows.push(row(T.cvsCode, d.paymentNo));
    buttons.push(render('clipboard-button', { style: 'primary', label: T.copyCode, clipboardText: d.paymentNo }));
  } else if (attempt && d.kind === 'redirect' && d.url && attempt.provider === 'ecpay') {
    // Our own ECPay checkout link: it opens a fresh trade whenever it is opened.
    buttons.push(render('uri-button', { style: 'primary', label: T.payNow, uri: d.url }));
  } else if (attempt) {
    // A bank's card page expires before our hold does: a tap asks for a fresh one.
    buttons.push(...paymentButtons(order, [attempt.method]));
  }
  const others = attempt ? (instructions?.otherMethods ?? []) : methods;
  if (!attempt && needsDelivery(order)) {
    // Nothing to pay yet: the delivery details come first.
    rows.push(para(DELIVERY_TEXT.deliveryFirst(order.order_no)));
    buttons.push(fillDeliveryButton(order.order_no, 'primary'));
  } else {
    if (!attempt && others.length) rows.push(para(T.reminderChoose));
    buttons.push(...paymentButtons(order, others, !attempt));
  }
  buttons.push(viewOrderButton(order.order_no));
  return notice(T.reminderAlt(order.order_no, order.total, order.hold_expires_at), { title: T.reminderTitle, color: 'warn', rows, buttons });
}

/** Shipped: the carrier, the tracking number to copy, and the carrier's tracking page when we know it. */
export function shippedMessage(orderNo: string, tracking: string | null, carrierName: string | null): Message {
  const carrier = findCarrier(carrierName);
  const rows = [row(LABEL.order, orderNo)];
  if (carrierName) rows.push(row(LABEL.carrier, carrier?.label ?? carrierName));
  if (tracking) rows.push(row(LABEL.tracking, tracking));
  rows.push(para(tracking ? `${T.shippedBody}\n${T.shippedTrackHint}` : T.shippedBody));
  const buttons: FlexComponent[] = [];
  if (tracking) {
    buttons.push(render('clipboard-button', { style: 'primary', label: T.copyTracking, clipboardText: clip(tracking, 1000) }));
    const url = carrier?.trackingUrl(tracking);
    if (url && url.length <= 1000) buttons.push(render('uri-button', { style: 'secondary', label: T.trackParcel, uri: url }));
  }
  buttons.push(viewOrderButton(orderNo));
  return notice(T.shippedShopper(orderNo, tracking), { title: T.shippedTitle, color: 'good', rows, buttons });
}

export function completedMessage(orderNo: string): Message {
  return notice(T.completedShopper(orderNo), {
    title: T.completedTitle,
    color: 'good',
    rows: [row(LABEL.order, orderNo), para(T.completedShopper(orderNo))],
    buttons: [render('postback-button', { style: 'primary', label: T.continueShopping, data: postbackData({ action: 'menu', page: 1 }) })],
  });
}

/** `walletBalance`: the refund went to the shopper's wallet, which now holds this much. */
export function refundedMessage(orderNo: string, amount: number, method: string | null, full: boolean, walletBalance?: number): Message {
  const toWallet = walletBalance !== undefined;
  const via = toWallet ? (METHOD_LABEL.wallet ?? method) : method && /card|credit/.test(method) ? T.refundToCard : method ? (METHOD_LABEL[method] ?? method) : null;
  const rows = [row(LABEL.order, orderNo), row(LABEL.refundAmount, twd(amount))];
  if (via) rows.push(row(LABEL.refundVia, via));
  const note = toWallet ? M.refundToWallet(orderNo, amount, walletBalance) : T.refundBankNote;
  rows.push(para(full ? note : `${T.refundPartialNote}\n${note}`));
  return notice(toWallet ? M.refundToWallet(orderNo, amount, walletBalance) : T.refundShopper(orderNo, amount), { title: T.refundedTitle, rows, buttons: [viewOrderButton(orderNo)] });
}

export function ownerNewOrderMessage(order: Order, items: OrderItems, shopperName: string | null, orderUrl: string | null): Message {
  // The owner hears of an order when it is placed; its delivery fee comes with the delivery details.
  const feePending = !order.delivery_ready_at;
  return notice(T.ownerNewOrderAlt(order.order_no, order.total, shopperName) + (feePending ? T.ownerNewOrderAltNoShipping : ''), {
    title: T.ownerNewOrderTitle,
    color: 'good',
    rows: [
      row(LABEL.order, order.order_no),
      row(LABEL.shopper, shopperName ?? T.shopperUnnamed),
      row(LABEL.amount, twd(order.total)),
      ...(feePending ? [para(T.ownerNewOrderNoShipping)] : []),
      row(LABEL.holdUntil, taipeiTime(order.hold_expires_at)),
      render('section-title', { text: T.itemCount(order.item_count) }),
      ...lineRows(items),
    ],
    buttons: backOfficeButtons(orderUrl),
  });
}

export function closedByText(by: ClosedBy): string {
  if (by.kind === 'shopper') return T.closedByShopper(by.name);
  if (by.kind === 'owner') return T.closedByOwner(by.name);
  return T.closedBySystem;
}

export function ownerOrderClosedMessage(order: Order, to: 'expired' | 'cancelled', by: ClosedBy, orderUrl: string | null): Message {
  const expired = to === 'expired';
  return notice(expired ? T.ownerExpiredAlt(order.order_no, order.total) : T.ownerCancelledAlt(order.order_no, order.total, closedByText(by)), {
    title: expired ? T.ownerExpiredTitle : T.ownerCancelledTitle,
    color: 'warn',
    rows: [row(LABEL.order, order.order_no), row(LABEL.amount, twd(order.total)), row(LABEL.closedBy, closedByText(by)), para(T.stockReleased)],
    buttons: backOfficeButtons(orderUrl),
  });
}

const lowStockButton = () => render('message-button', { style: 'secondary', label: T.viewLowStock, text: COMMAND.ownerLowStock });

export function ownerLowStockMessage(p: StockProduct, available: number, threshold: number): Message {
  return notice(T.ownerLowStockAlt(p.name, p.sku, available), {
    title: T.ownerLowStockNoticeTitle,
    color: 'warn',
    subtitle: T.summaryLowStock(threshold),
    rows: [row(LABEL.product, p.name), row(LABEL.sku, p.sku), row(LABEL.available, String(available)), para(T.restockHint(p.sku))],
    buttons: [lowStockButton()],
  });
}

export function ownerSoldOutMessage(p: StockProduct): Message {
  return notice(T.ownerSoldOutAlt(p.name, p.sku), {
    title: T.ownerSoldOutTitle,
    color: 'bad',
    rows: [row(LABEL.product, p.name), row(LABEL.sku, p.sku), row(LABEL.available, '0'), para(T.restockHint(p.sku))],
    buttons: [lowStockButton()],
  });
}

/** An alert or an answer to the owner (payment anomalies, refund results), with the order's page when one is named. */
export function ownerAlertMessage(title: string, body: string, orderUrl: string | null, color: keyof typeof COLOR = 'warn'): Message {
  return notice(body, { title, color, rows: [para(body)], buttons: backOfficeButtons(orderUrl) });
}

/** The owner's daily summary: orders, money by method, best sellers, low stock, and message use. */
/** `members`: the members' side of the day in a line (wallet top-ups, points granted), when there was any. */
export function dailySummaryMessage(f: DailyFigures, quota: MessageQuota | null, members: string | null = null): Message {
  const none = [render('note', { text: T.summaryNone })];
  const rows: FlexComponent[] = [
    row(T.summaryOrders, T.count(f.orders)),
    row(T.summaryPaid, T.count(f.paid)),
    row(T.summaryAmount, twd(f.amount)),
    render('section-title', { text: T.summaryByMethod }),
    ...(f.byMethod.length ? f.byMethod.map((m) => row(METHOD_LABEL[m.method] ?? m.method, T.methodTakings(m.amount, m.orders))) : none),
    render('section-title', { text: T.summaryTopProducts }),
    ...(f.topProducts.length ? f.topProducts.map((p, i) => row(`${i + 1}. ${clip(p.name, 30)}`, T.soldQty(p.qty, p.amount))) : none),
    render('section-title', { text: T.summaryLowStock(f.threshold) }),
    ...(f.lowStock.length ? f.lowStock.map((p) => row(`${clip(p.sku, 20)} ${clip(p.name, 20)}`, T.availableUnits(p.available))) : none),
    ...(f.lowStockCount > f.lowStock.length ? [render('note', { text: T.summaryMoreLowStock(f.lowStockCount - f.lowStock.length) })] : []),
    render('section-title', { text: T.summaryMessages }),
    row(T.summaryPushesToday, T.messages(f.pushesToday)),
    row(T.summaryPushesMonth, T.messages(f.pushesThisMonth)),
    row(T.summaryLineUsage, quota ? T.summaryQuota(quota.used, quota.limit) : T.summaryQuotaUnknown),
    ...(members ? [render('section-title', { text: T.summaryMembers }), para(members)] : []),
  ];
  return notice(T.ownerDailySummary(f.date, f.orders, f.paid, f.amount) + (members ? `\n${members}` : ''), {
    title: T.summaryTitle(f.date),
    rows,
    buttons: [
      render('message-button', { style: 'secondary', label: QUICK.ownerToday, text: COMMAND.ownerToday }),
      render('message-button', { style: 'secondary', label: QUICK.ownerToShip, text: COMMAND.ownerToShip }),
    ],
  });
}

// ---------------------------------------------------------------------------------------------
// Store pickup

/** The parcel waits at the pickup store: which store, until when. */
export function arrivedMessage(orderNo: string, storeName: string, storeAddress: string | null, pickupDeadline: Date | null): Message {
  const deadline = pickupDeadline ? taipeiTime(pickupDeadline).slice(0, 10) : '-';
  const rows = [row(LABEL.order, orderNo), row(SHIPMENT.store, storeName)];
  if (storeAddress) rows.push(row(SHIPMENT.address, storeAddress));
  rows.push(row(SHIPMENT.pickupDeadline, deadline), para(SHIPMENT.arrived(orderNo, storeName, deadline)));
  return notice(SHIPMENT.arrived(orderNo, storeName, deadline), { title: SHIPMENT.arrivedTitle, color: 'good', rows, buttons: [viewOrderButton(orderNo)] });
}

/** The parcel was not collected and went back to the seller. */
export function returnedMessage(orderNo: string): Message {
  return notice(SHIPMENT.returned(orderNo), {
    title: SHIPMENT.returnedTitle,
    color: 'warn',
    rows: [row(LABEL.order, orderNo), para(SHIPMENT.returned(orderNo))],
    buttons: [viewOrderButton(orderNo)],
  });
}

/** The owner's drop-off instructions for a new store-pickup shipment, with the code to copy. */
export function ownerShipmentCreatedMessage(body: string, code: string, orderUrl: string | null): Message {
  return notice(body, {
    title: SHIPMENT.createdTitle,
    color: 'good',
    rows: [para(body)],
    buttons: [render('clipboard-button', { style: 'primary', label: T.copyCode, clipboardText: clip(code, 1000) }), ...backOfficeButtons(orderUrl)],
  });
}
