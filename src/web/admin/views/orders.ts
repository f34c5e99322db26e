import type { OrderDetail, OrderListRow, OrderQuery } from '../../../domain/order-admin';
import { ORDER_STATUSES } from '../../../domain/order-admin';
import type { AuditRow } from '../../../domain/audit';
import { chainName } from '../../../line/notifier';
import { ADMIN, METHOD_LABEL, SHIPMENT, STATUS_LABEL } from '../../../texts';
import { html, Html, when } from '../html';
import { field, formGuard, money, page, PageContext, pager, statusBadge, when_ } from '../layout';
import { auditList } from './audit';

const O = ADMIN.orders;
const D = ADMIN.order;

export const shopperName = (displayName: string | null): string => displayName ?? D.unknownShopper;

export function ordersPage(ctx: PageContext, r: { orders: OrderListRow[]; total: number; page: number; pages: number }, q: OrderQuery): Html {
  const statuses = ORDER_STATUSES.map((s) => html`<option value="${s}"${when(q.status === s, 'selected')}>${STATUS_LABEL[s]}</option>`);
  const rows = r.orders.map(
    (o) => html`<li><div class="orow"><a href="/admin/orders/${o.order_no}">${o.order_no}</a><span class="num">${money(o.total)}</span></div>
<div class="orow small"><span>${shopperName(o.display_name)} ・ ${when_(o.created_at)}</span>${statusBadge(o.status)}</div>
<div class="pmeta">${o.summary ?? ''}</div></li>`,
  );
  const exportQ = new URLSearchParams();
  if (q.from) exportQ.set('from', q.from);
  if (q.to) exportQ.set('to', q.to);
  return page(
    ctx,
    'orders',
    O.title,
    html`<form class="card filters" method="get" action="/admin/orders" role="search">
<div class="wide"><label for="q">${ADMIN.search}</label><input id="q" type="search" name="q" value="${q.q ?? ''}" placeholder="${O.searchPlaceholder}"></div>
<div><label for="status">${O.status}</label><select id="status" name="status"><option value="">${ADMIN.all}</option>${statuses}</select></div>
<div><label for="from">${O.from}</label><input id="from" type="date" name="from" value="${q.from ?? ''}"></div>
<div><label for="to">${O.to}</label><input id="to" type="date" name="to" value="${q.to ?? ''}"></div>
<div><button type="submit">${ADMIN.search}</button></div>
</form>
<div class="toolbar"><span class="small muted">${O.exportHint}</span><a class="btn" href="/admin/export/orders.csv${exportQ.size ? `?${exportQ.toString()}` : ''}">${ADMIN.exportCsv}</a></div>
<section class="card">${rows.length ? html`<ul class="olist">${rows}</ul>` : html`<p class="muted">${O.empty}</p>`}
${pager('/admin/orders', { q: q.q, status: q.status, from: q.from, to: q.to }, r.page, r.pages, r.total)}</section>`,
  );
}

/** Who did something, in the owner's words (order_events.actor / refunds.requested_by). */
export function actorLabel(actor: string, names: Map<string, string>): string {
  if (actor.startsWith('owner:')) return names.get(actor.slice(6)) ?? D.actor.owner!;
  return D.actor[actor] ?? actor;
}

/**
 * The order's delivery: method, recipient (phone masked), store or address, its shipments with
 * number, drop-off code and status history, and for a paid store-pickup order the 出貨 button
 * (the same owner use case as the chat's 出貨).
 */
export function deliverySection(d: OrderDetail, ctx: PageContext, forms: ActionForms = {}): Html | '' {
  const v = d.delivery;
  if (!v) return '';
  const S = SHIPMENT;
  const method = v.method === 'cvs' ? S.cvs(chainName(v.subType)) : v.method === 'home' ? S.home : S.none;
  const shipments = v.shipments.map(({ shipment: s, dropOffCode, printable, history }) => {
    const rows = history.map(
      (h) => html`<li><div>${h.rtn_code ?? ''} ${h.rtn_msg ?? ''}</div><div class="small muted">${h.update_status_date && h.update_status_date !== 'query' ? h.update_status_date : when_(h.received_at)} ・ ${S.outcome[h.outcome] ?? h.outcome}</div></li>`,
    );
    return html`<div class="shipment" id="shipment-${s.id}"><dl class="kv small">
<dt>${S.shipmentStatus}</dt><dd><span class="badge">${S.status[s.status] ?? s.status}</span>${s.status === 'failed' && s.last_rtn_msg ? html` <span class="small muted">${s.last_rtn_msg}</span>` : ''}</dd>
${s.provider !== 'ecpay' ? html`<dt>${D.carrier}</dt><dd>${s.provider}</dd>` : ''}
${s.shipment_no ? html`<dt>${S.shipmentNo}</dt><dd><code>${s.shipment_no}</code>${s.validation_no ? html` / <code>${s.validation_no}</code>` : ''}</dd>` : ''}
${dropOffCode && s.provider === 'ecpay' ? html`<dt>${S.dropOffCode}</dt><dd><code class="drop-off-code">${dropOffCode}</code></dd>` : ''}
${s.pickup_deadline ? html`<dt>${S.pickupDeadline}</dt><dd>${when_(s.pickup_deadline)}</dd>` : ''}
</dl>${printable ? html`<p><a class="btn" id="print-label" href="/admin/orders/${d.order.order_no}/label" target="_blank" rel="noopener">${S.printLabel}</a></p>` : ''}${s.provider === 'ecpay' ? html`<h3 class="small">${S.history}</h3>${rows.length ? html`<ul class="timeline">${rows}</ul>` : html`<p class="muted small">${S.noHistory}</p>`}` : ''}</div>`;
  });
  const ship = v.canShipCvs
    ? html`<form method="post" action="/admin/orders/${d.order.order_no}/ship" id="ship-cvs-form">${formGuard(ctx)}<p class="small muted">${S.shipCvsHint}</p><div class="actions"><button class="primary" type="submit">${S.shipCvs}</button></div></form>`
    : '';
  const changeStore = v.canChangeStore
    ? html`<form method="post" action="/admin/orders/${d.order.order_no}/store" id="store-form">${formGuard(ctx)}<h3>${S.changeStore}</h3>${v.shopperAskedUntil ? html`<p class="small" id="shopper-asked">${S.shopperAsked(when_(v.shopperAskedUntil))}</p>` : ''}<p class="small muted">${S.changeStoreHint}</p>
${field({ label: S.storeIdLabel, name: 'store_id', value: forms.store?.storeId ?? '', inputmode: 'numeric', maxlength: 6, error: forms.store?.idError })}
${field({ label: S.storeNameLabel, name: 'store_name', value: forms.store?.storeName ?? '', maxlength: 10, error: forms.store?.nameError })}
<div class="actions"><button class="primary" type="submit">${S.changeStore}</button></div></form>`
    : '';
  return html`<div class="card"><h2>${S.section}</h2><dl class="kv small">
<dt>${S.method}</dt><dd>${method}</dd>
${v.recipientName ? html`<dt>${S.recipient}</dt><dd>${v.recipientName}</dd>` : ''}
${v.recipientPhone ? html`<dt>${S.phone}</dt><dd>${v.recipientPhone}</dd>` : ''}
${v.method === 'cvs' ? html`<dt>${S.store}</dt><dd>${v.storeName ?? ''}${v.storeId ? ` (${v.storeId})` : ''}${v.storeAddress ? html`<div class="small muted">${v.storeAddress}</div>` : ''}</dd>` : ''}
${v.address ? html`<dt>${S.address}</dt><dd>${v.address}</dd>` : ''}
</dl>${shipments}${ship}${changeStore}</div>`;
}

export interface ActionForms {
  ship?: { carrier: string; tracking: string; error?: string | null };
  refund?: { amount: string; error?: string | null };
  store?: { storeId: string; storeName: string; idError?: string | null; nameError?: string | null };
}

export function orderDetailPage(ctx: PageContext, d: OrderDetail, names: Map<string, string>, forms: ActionForms = {}): Html {
  const o = d.order;
  const lines = [
    ...d.items.lines.map((l) => html`<tr><td>${l.name}<div class="small muted">${l.sku} ・ ${money(l.unit_price)} × ${l.qty}</div></td><td class="num">${money(l.line_total)}</td></tr>`),
    ...d.items.adjustments.map((a) => html`<tr><td>${a.label}<div class="small muted">${D.adjustment}</div></td><td class="num">${a.amount < 0 ? `−${money(-a.amount)}` : money(a.amount)}</td></tr>`),
  ];
  const attempts = d.attempts.map(
    (a) => html`<li><div class="orow"><span>${METHOD_LABEL[a.method] ?? a.method}</span><span class="num">${money(a.amount)}</span></div>
<div class="orow small"><span class="muted">${when_(a.paid_at ?? a.created_at)}</span><span class="badge ${a.status === 'paid' ? 'ok' : ''}">${D.attemptStatus[a.status] ?? a.status}</span></div>
<div class="pmeta">${D.tradeNo} <code>${a.trade_no}</code></div>${a.gateway_trade_id ? html`<div class="pmeta">${D.bankTradeId} <code>${a.gateway_trade_id}</code></div>` : ''}</li>`,
  );
  const refunds = d.refunds.map(
    (r) => html`<tr><td>${when_(r.created_at)}<div class="small muted">${actorLabel(r.requested_by, names)}</div></td><td class="num">${money(r.amount)}</td><td>${
      r.status === 'pending' && r.outcome === 'unknown' ? D.refundUnknown : D.refundStatus[r.status] ?? r.status
    }</td></tr>`,
  );
  const timeline = d.events.map((e) => {
    const amount = typeof e.details?.amount === 'number' ? e.details.amount : null;
    const what = e.from_status === e.to_status && amount !== null ? D.refundLine(amount) : `${e.from_status ? `${STATUS_LABEL[e.from_status] ?? e.from_status} → ` : ''}${STATUS_LABEL[e.to_status] ?? e.to_status}`;
    return html`<li><div>${what}</div><div class="small muted">${when_(e.created_at)} ・ ${actorLabel(e.actor, names)}</div></li>`;
  });
  const a = d.actions;
  // Store pickup ships from the delivery section (no carrier or tracking to type).
  const ship = a.ship && d.delivery?.method !== 'cvs'
    ? html`<form class="card" method="post" action="/admin/orders/${o.order_no}/ship" id="ship-form">${formGuard(ctx)}<h2>${D.shipping}</h2>
<datalist id="carriers"><option value="黑貓宅急便"><option value="新竹物流"><option value="中華郵政"><option value="7-ELEVEN 交貨便"><option value="全家店到店"></datalist>
${field({ label: D.carrier, name: 'carrier', value: forms.ship?.carrier ?? '', list: 'carriers', placeholder: D.carrierHint, maxlength: 40 })}
${field({ label: D.tracking, name: 'tracking', value: forms.ship?.tracking ?? '', maxlength: 60, autocapitalize: 'characters', error: forms.ship?.error })}
<div class="actions"><button class="primary" type="submit">${D.ship}</button></div></form>`
    : '';
  const refund =
    a.refundable !== null && a.refundable > 0
      ? html`<form class="card" method="post" action="/admin/orders/${o.order_no}/refund" id="refund-form" data-confirm="${D.confirmRefund}">${formGuard(ctx)}<h2>${D.refund}</h2>
${field({ label: D.amount, name: 'amount', value: forms.refund?.amount ?? '', inputmode: 'numeric', hint: D.refundHint(a.refundable), error: forms.refund?.error })}
<div class="actions"><button class="danger" type="submit">${D.refund}</button></div></form>`
      : '';
  const simple = [
    a.complete ? html`<form method="post" action="/admin/orders/${o.order_no}/complete">${formGuard(ctx)}<button class="primary" type="submit">${D.complete}</button></form>` : '',
    a.cancel ? html`<form method="post" action="/admin/orders/${o.order_no}/cancel" data-confirm="${D.confirmCancel}">${formGuard(ctx)}<button class="danger" type="submit">${D.cancel}</button></form>` : '',
  ].filter(Boolean);
  const paidNotCard = a.refundable === null && o.paid_amount > 0 && ['paid', 'shipped', 'at_store', 'returned', 'completed', 'paid_no_stock'].includes(o.status);
  return page(
    ctx,
    'orders',
    D.title(o.order_no),
    html`<section class="card"><div class="orow"><span>${statusBadge(o.status)}</span><span class="num"><b>${money(o.total)}</b></span></div>
<dl class="kv small">
<dt>${D.shopper}</dt><dd>${shopperName(d.shopper.displayName)}${d.shopper.following === false ? html` <span class="badge bad">${D.unfollowed}</span>` : ''}</dd>
<dt>${D.placedAt}</dt><dd>${when_(o.created_at)}</dd>
${o.status === 'pending_payment' ? html`<dt>${D.holdUntil}</dt><dd>${when_(o.hold_expires_at)}</dd>` : ''}
${o.paid_at ? html`<dt>${D.paidAt}</dt><dd>${when_(o.paid_at)}</dd><dt>${D.method}</dt><dd>${o.payment_method ? METHOD_LABEL[o.payment_method] ?? o.payment_method : ADMIN.none}</dd>` : ''}
${o.shipped_at ? html`<dt>${D.shipping}</dt><dd>${when_(o.shipped_at)} ・ ${D.shippedInfo(o.carrier, o.tracking_no)}</dd>` : ''}
${o.refunded_amount ? html`<dt>${D.refundedAmount}</dt><dd>${money(o.refunded_amount)}</dd>` : ''}
</dl>${paidNotCard ? html`<p class="small muted">${D.refundOffline}</p>` : ''}${simple.length ? html`<div class="actions">${simple}</div>` : ''}</section>
${ship}${refund}
<section class="card"><h2>${D.lines}</h2><table class="lines"><tbody>${lines}<tr class="total"><td>${D.total}</td><td class="num">${money(o.total)}</td></tr></tbody></table></section>
<section id="delivery">${deliverySection(d, ctx, forms)}</section>
<section class="card"><h2>${D.payments}</h2>${
      attempts.length ? html`<ul class="olist">${attempts}</ul>` : html`<p class="muted small">${D.noPayments}</p>`
    }</section>
${refunds.length ? html`<section class="card"><h2>${D.refunds}</h2><table><tbody>${refunds}</tbody></table></section>` : ''}
<section class="card"><h2>${D.timeline}</h2><ul class="timeline">${timeline}</ul></section>
${d.audit.length ? html`<section class="card"><h2>${D.audit}</h2>${auditList(d.audit as AuditRow[], names)}</section>` : ''}`,
  );
}
