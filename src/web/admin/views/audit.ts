import type { AuditRow } from '../../../domain/audit';
import { ADMIN } from '../../../texts';
import { html, Html, when } from '../html';
import { page, PageContext, when_ } from '../layout';

const A = ADMIN.audit;

const json = (v: unknown): Html | string => (v === null || v === undefined ? ADMIN.none : html`<pre class="json">${JSON.stringify(v, null, 1)}</pre>`);

function who(actor: string, names: Map<string, string>): string {
  if (actor.startsWith('owner:')) return names.get(actor.slice(6)) ?? ADMIN.order.actor.owner!;
  return ADMIN.order.actor[actor] ?? actor;
}

function origin(row: AuditRow): string {
  const o = row.origin as { ip?: string; userAgent?: string } | null;
  if (!o) return A.sources[row.source] ?? row.source;
  return [A.sources[row.source] ?? row.source, o.ip, o.userAgent ? o.userAgent.slice(0, 80) : null].filter(Boolean).join(' ・ ');
}

export function auditTable(rows: AuditRow[], names: Map<string, string>): Html {
  return html`<div class="scroll"><table class="small"><thead><tr><th>${A.when}</th><th>${A.who}</th><th>${A.action}</th><th>${A.target}</th><th>${A.before}</th><th>${A.after}</th><th>${A.reason}</th><th>${A.from}</th></tr></thead><tbody>${rows.map(
    (r) => html`<tr><td>${when_(r.at)}</td><td>${who(r.actor, names)}</td><td>${A.actions[r.action] ?? r.action}</td><td>${target(r)}</td><td>${json(r.before)}</td><td>${json(r.after)}</td><td>${r.reason ?? ''}</td><td>${origin(r)}</td></tr>`,
  )}</tbody></table></div>`;
}

function target(r: AuditRow): Html | string {
  if (r.target_type === 'order') return html`<a href="/admin/orders/${r.target_id}">${r.target_id}</a>`;
  if (r.target_type === 'product') return html`<a href="/admin/products/${r.target_id}">#${r.target_id}</a>`;
  return r.target_type === 'owner' ? '' : `${r.target_type} #${r.target_id}`;
}

export interface AuditFilter {
  group?: string | null;
  source?: string | null;
  target?: string | null;
}

export function auditPage(ctx: PageContext, rows: AuditRow[], f: AuditFilter, names: Map<string, string>, olderHref: string | null): Html {
  const groups = Object.entries(A.groups).map(([k, label]) => html`<option value="${k}"${when(f.group === k, 'selected')}>${label}</option>`);
  const sources = Object.entries(A.sources).map(([k, label]) => html`<option value="${k}"${when(f.source === k, 'selected')}>${label}</option>`);
  return page(
    ctx,
    'audit',
    A.title,
    html`<form class="card filters" method="get" action="/admin/audit">
<div><label for="group">${A.action}</label><select id="group" name="group"><option value="">${ADMIN.all}</option>${groups}</select></div>
<div><label for="source">${A.source}</label><select id="source" name="source"><option value="">${ADMIN.all}</option>${sources}</select></div>
<div class="wide"><label for="target">${A.target}</label><input id="target" type="search" name="target" value="${f.target ?? ''}"></div>
<div><button type="submit">${ADMIN.search}</button></div></form>
<section class="card">${rows.length ? auditTable(rows, names) : html`<p class="muted">${A.empty}</p>`}${olderHref ? html`<div class="pager"><span></span><a href="${olderHref}">${ADMIN.older}</a></div>` : ''}</section>`,
  );
}
