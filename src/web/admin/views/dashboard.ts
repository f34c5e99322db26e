import type { Product } from '../../../domain/catalog';
import type { Dashboard, PeriodFigures } from '../../../domain/order-admin';
import type { MessageQuota } from '../../../line/line-client';
import { ADMIN, METHOD_LABEL } from '../../../texts';
import { html, Html } from '../html';
import { money, page, PageContext, when_ } from '../layout';

const D = ADMIN.dashboard;

function periodCard(title: string, p: PeriodFigures): Html {
  const rows = p.byMethod.map((m) => html`<tr><td>${m.method ? METHOD_LABEL[m.method] ?? m.method : ADMIN.none}</td><td class="num">${m.orders}</td><td class="num">${money(m.amount)}</td></tr>`);
  return html`<section class="card"><h2>${title}</h2>
<div class="kpis"><div class="kpi"><b>${p.placed}</b><span>${D.placed}</span></div><div class="kpi"><b>${p.paidOrders}</b><span>${D.paid}</span></div><div class="kpi"><b>${money(p.revenue)}</b><span>${D.revenue}</span></div></div>
${
  p.byMethod.length
    ? html`<table><thead><tr><th>${D.method}</th><th class="num">${D.orders}</th><th class="num">${D.amount}</th></tr></thead><tbody>${rows}</tbody></table>`
    : html`<p class="muted small">${D.noPayments}</p>`
}${p.refunded ? html`<p class="small muted">${D.refunded} ${money(p.refunded)}</p>` : ''}</section>`;
}

export function dashboardPage(
  ctx: PageContext,
  d: Dashboard,
  lowStock: Array<Product & { available: number }>,
  quota: MessageQuota | null,
  lowStockThreshold: number,
): Html {
  const ship = d.toShip.oldest.map(
    (o) => html`<li><div class="orow"><a href="/admin/orders/${o.order_no}">${o.order_no}</a><span class="num">${money(o.total)}</span></div><div class="small muted">${D.paid} ${when_(o.paid_at)}</div></li>`,
  );
  const unpaid = d.unpaid.soonest.map(
    (o) => html`<li><div class="orow"><a href="/admin/orders/${o.order_no}">${o.order_no}</a><span class="num">${money(o.total)}</span></div><div class="small muted">${D.holdUntil} ${when_(o.hold_expires_at)}</div></li>`,
  );
  const low = lowStock.map(
    (p) => html`<li><div class="orow"><a href="/admin/products/${p.id}">${p.name}</a><span class="num">${D.available} ${p.available}</span></div><div class="small muted">${p.sku}</div></li>`,
  );
  const pct = quota && quota.limit ? Math.min(100, Math.round((quota.used / quota.limit) * 100)) : null;
  return page(
    ctx,
    'dashboard',
    D.title,
    html`<div class="grid">${periodCard(D.today, d.today)}${periodCard(D.month, d.month)}</div>
<div class="grid">
<section class="card"><h2>${D.toShip(d.toShip.count)}</h2>${ship.length ? html`<ul class="olist">${ship}</ul>` : html`<p class="muted">${D.toShipEmpty}</p>`}</section>
<section class="card"><h2>${D.unpaid(d.unpaid.count)}</h2>${unpaid.length ? html`<ul class="olist">${unpaid}</ul>` : html`<p class="muted">${D.unpaidEmpty}</p>`}</section>
<section class="card"><h2>${D.lowStock(lowStockThreshold)}</h2>${low.length ? html`<ul class="olist">${low}</ul>` : html`<p class="muted">${D.lowStockEmpty}</p>`}</section>
<section class="card" id="quota"><h2>${D.quota}</h2>${
      quota ? html`<p>${D.quotaUsed(quota.used, quota.limit)}</p>${pct !== null ? html`<progress max="100" value="${pct}">${pct}%</progress>` : ''}` : html`<p class="muted">${D.quotaUnavailable}</p>`
    }<p class="small muted">${D.quotaHint}</p></section>
</div>`,
  );
}
