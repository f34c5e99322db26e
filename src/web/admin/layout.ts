import { ADMIN, STATUS_LABEL, taipeiTime, twd } from '../../texts';
import { ASSETS } from './assets';
import { html, Html, Renderable, when } from './html';

/** What every signed-in page knows: who, the session's CSRF token, which tab, and a flash message. */
export interface PageContext {
  csrf: string;
  /** A fresh idempotency key for each form on the page. */
  formKey: () => string;
  ownerName: string;
  flash?: Flash | null;
}

export interface Flash {
  tone: 'ok' | 'bad';
  text: string;
}

export type Tab = keyof typeof ADMIN.nav;
const TABS: Array<[Tab, string]> = [
  ['dashboard', '/admin'],
  ['products', '/admin/products'],
  ['categories', '/admin/categories'],
  ['orders', '/admin/orders'],
  ['members', '/admin/members'],
  ['audit', '/admin/audit'],
];

function doc(title: string, body: Html): Html {
  return html`<!doctype html>
<html lang="zh-Hant-TW"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${title} ・ ${ADMIN.appName}</title>
<link rel="stylesheet" href="${ASSETS.css.path}"><script src="${ASSETS.js.path}" defer></script></head>
<body>${body}</body></html>`;
}

/** Hidden fields every POST form carries: the session's CSRF token and the form's idempotency key. */
export const formGuard = (ctx: PageContext): Html => html`<input type="hidden" name="_csrf" value="${ctx.csrf}"><input type="hidden" name="_key" value="${ctx.formKey()}">`;

export function page(ctx: PageContext, tab: Tab | null, title: string, content: Renderable): Html {
  const nav = TABS.map(([t, href]) => html`<a href="${href}"${when(t === tab, 'class="on" aria-current="page"')}>${ADMIN.nav[t]}</a>`);
  const flash = ctx.flash ? html`<div class="flash ${ctx.flash.tone}" role="status">${ctx.flash.text}</div>` : '';
  return doc(
    title,
    html`<header class="top"><div class="bar"><a class="brand" href="/admin">${ADMIN.appName}</a><span class="muted small">${ctx.ownerName}</span>
<form method="post" action="/admin/logout">${formGuard(ctx)}<button class="small" type="submit">${ADMIN.logout}</button></form></div>
<nav class="tabs">${nav}</nav></header>
<main>${flash}<h1>${title}</h1>${content}</main>`,
  );
}

/** A page for someone without a session (or a refused request): a message, never data. */
export function messagePage(title: string, body: string, icon = '🔐', link?: { href: string; label: string }): Html {
  return doc(
    title,
    html`<main><div class="card center"><div class="icon" aria-hidden="true">${icon}</div><h1>${title}</h1><p>${body}</p>${link ? html`<p><a class="btn primary" href="${link.href}">${link.label}</a></p>` : ''}</div></main>`,
  );
}

export const money = (n: number): string => twd(n);
export const when_ = (d: Date | string | null | undefined): string => (d ? taipeiTime(new Date(d)) : ADMIN.none);

const STATUS_TONE: Record<string, string> = {
  pending_payment: 'warn',
  paid: 'ok',
  shipped: 'info',
  at_store: 'info',
  returned: 'warn',
  completed: 'ok',
  paid_no_stock: 'bad',
  refunded: '',
  expired: '',
  cancelled: '',
};
export const statusBadge = (status: string): Html => html`<span class="badge ${STATUS_TONE[status] ?? ''}">${STATUS_LABEL[status] ?? status}</span>`;

/** A labelled form field with its hint and error. */
export function field(args: {
  label: string;
  name: string;
  value?: string | number | null;
  type?: 'text' | 'number' | 'search' | 'date';
  hint?: string;
  error?: string | null;
  required?: boolean;
  inputmode?: 'numeric' | 'text';
  maxlength?: number;
  placeholder?: string;
  list?: string;
  autocapitalize?: 'characters' | 'off';
}): Html {
  const id = `f-${args.name}`;
  return html`<label for="${id}">${args.label}${args.hint ? html`<span class="hint">${args.hint}</span>` : ''}</label>
<input id="${id}" name="${args.name}" type="${args.type ?? 'text'}" value="${args.value ?? ''}"${when(!!args.required, 'required')}${when(!!args.error, 'class="bad" aria-invalid="true"')}${
    args.inputmode ? html` inputmode="${args.inputmode}"` : ''
  }${args.maxlength ? html` maxlength="${args.maxlength}"` : ''}${args.placeholder ? html` placeholder="${args.placeholder}"` : ''}${args.list ? html` list="${args.list}"` : ''}${
    args.autocapitalize ? html` autocapitalize="${args.autocapitalize}"` : ''
  }>${args.error ? html`<span class="err">${args.error}</span>` : ''}`;
}

export function pager(base: string, params: Record<string, string | number | null | undefined>, page: number, pages: number, total: number): Html {
  const href = (p: number) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
    q.set('page', String(p));
    return `${base}?${q.toString()}`;
  };
  return html`<div class="pager"><span>${page > 1 ? html`<a href="${href(page - 1)}">${ADMIN.prev}</a>` : ''}</span><span class="muted">${ADMIN.pageOf(page, pages, total)}</span><span>${
    page < pages ? html`<a href="${href(page + 1)}">${ADMIN.next}</a>` : ''
  }</span></div>`;
}
