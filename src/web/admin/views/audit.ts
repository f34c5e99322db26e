import type { AuditRow } from '../../../domain/audit';
import { ADMIN, METHOD_LABEL, STATUS_LABEL } from '../../../texts';
import { html, Html, when } from '../html';
import { page, PageContext, when_ } from '../layout';

const A = ADMIN.audit;

function who(actor: string, names: Map<string, string>): string {
  if (actor.startsWith('owner:')) return names.get(actor.slice(6)) ?? ADMIN.order.actor.owner!;
  return ADMIN.order.actor[actor] ?? actor;
}

/** A value from an audit row as the owner reads it. */
function show(key: string, v: unknown): string {
  if (v === null || v === undefined || v === '') return ADMIN.none;
  if (typeof v === 'boolean') return v ? A.yes : A.no;
  if (key === 'status' && typeof v === 'string') return STATUS_LABEL[v] ?? v;
  if (key === 'method' && typeof v === 'string') return METHOD_LABEL[v] ?? v;
  if (key === 'image' && typeof v === 'string') return /^[0-9a-f]{64}$/.test(v) ? v.slice(0, 10) : v.length > 40 ? `${v.slice(0, 39)}…` : v;
  if (Array.isArray(v)) return v.join(' ・ ');
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return s.length > 80 ? `${s.slice(0, 79)}…` : s;
}

/** What changed: each known field as "before → after" (or just its value when only one side exists). */
function changes(r: AuditRow): Html | '' {
  const before = (r.before ?? {}) as Record<string, unknown>;
  const after = (r.after ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => k in A.fields);
  if (!keys.length) return '';
  return html`<dl class="kv small">${keys.map((k) => {
    const b = k in before ? show(k, before[k]) : null;
    const a = k in after ? show(k, after[k]) : null;
    return html`<dt>${A.fields[k]}</dt><dd>${b !== null && a !== null && b !== a ? `${b} → ${a}` : a ?? b}</dd>`;
  })}</dl>`;
}

function target(r: AuditRow): Html | string {
  if (r.target_type === 'order') return html`<a href="/admin/orders/${r.target_id}">${r.target_id}</a>`;
  if (r.target_type === 'product') return html`<a href="/admin/products/${r.target_id}">${ADMIN.nav.products} #${r.target_id}</a>`;
  if (r.target_type === 'category') return `${ADMIN.nav.categories} #${r.target_id}`;
  return '';
}

/** Audit rows as a list that reads on a phone: what and on what, who and from where, what changed, why. */
export function auditList(rows: AuditRow[], names: Map<string, string>): Html {
  return html`<ul class="olist">${rows.map((r) => {
    const o = (r.origin ?? {}) as { ip?: string; userAgent?: string };
    return html`<li><div class="orow"><span><b>${A.actions[r.action] ?? r.action}</b> ${target(r)}</span><span class="small muted num">${when_(r.at)}</span></div>
<div class="pmeta">${who(r.actor, names)} ・ ${A.sources[r.source] ?? r.source}${o.ip ? ` ・ ${o.ip}` : ''}</div>
${changes(r)}${r.reason ? html`<div class="small">${A.reason}：${r.reason}</div>` : ''}${o.userAgent ? html`<div class="pmeta ua">${o.userAgent}</div>` : ''}</li>`;
  })}</ul>`;
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
<section class="card">${rows.length ? auditList(rows, names) : html`<p class="muted">${A.empty}</p>`}${olderHref ? html`<div class="pager"><span></span><a href="${olderHref}">${ADMIN.older}</a></div>` : ''}</section>`,
  );
}
