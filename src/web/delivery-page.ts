import crypto from 'node:crypto';
import type { Response } from 'express';
import { deliveryLabel, maskPhone, type DeliveryDetails, type FormErrors, type PageState } from '../domain/delivery';
import { escapeHtml } from '../html';
import { DELIVERY_FORM, DELIVERY_TEXT, PAGE, taipeiTime, twd } from '../texts';

/**
 * The delivery details page (GET/POST /delivery/:ref): a small zh-TW form for LINE's in-app
 * browser. No script; the method's own fields show by CSS (`:has(:checked)`), and everything
 * shows where that is not supported. Every value is HTML-escaped; inline styles are allowed by
 * their hash in the page's CSP (see cspFor).
 */

const esc = escapeHtml;

/** The frame every shopper page of ours shares (delivery details, store change): colours, header, cards. */
export const SHOPPER_PAGE_CSS = `*{box-sizing:border-box}
body{font-family:-apple-system,"PingFang TC","Noto Sans TC","Microsoft JhengHei",sans-serif;margin:0;background:#f5f6f7;color:#222;font-size:16px;line-height:1.5}
header{background:#06C755;color:#fff;padding:16px 20px}
header h1{margin:0;font-size:20px}
header p{margin:2px 0 0;font-size:14px;opacity:.9}
main{padding:12px 16px 32px;max-width:520px;margin:0 auto}
.card{background:#fff;border-radius:12px;padding:14px 16px;margin:12px 0;box-shadow:0 1px 2px rgba(0,0,0,.06)}
`;

const BASE_CSS = SHOPPER_PAGE_CSS + `.card h2{font-size:15px;margin:0 0 8px;color:#555}
.opt{display:flex;align-items:center;gap:10px;padding:10px 4px;border-bottom:1px solid #eee}
.opt:last-child{border-bottom:0}
.opt input{width:20px;height:20px;margin:0;accent-color:#06C755}
.opt span{flex:1}
.opt small{color:#06C755;font-weight:bold}
label.f{display:block;font-weight:bold;margin:14px 0 4px}
.card>div:first-child>label.f{margin-top:0}
input.t,textarea{width:100%;font-size:16px;padding:10px 12px;border:1px solid #ccc;border-radius:8px;background:#fff}
textarea{min-height:64px;resize:vertical}
.hint{font-size:13px;color:#888;margin:4px 0 0}
.err{color:#E74C3C;font-size:14px;margin:4px 0 0}
.bad input.t,.bad textarea{border-color:#E74C3C}
.errors{background:#FDEDEC;border:1px solid #F5B7B1;color:#922B21;border-radius:10px;padding:10px 14px;margin:12px 0}
.errors p{margin:0 0 4px;font-weight:bold}
.errors ul{margin:0;padding-left:20px}
.ok{background:#E9F9EF;border:1px solid #A9DFBF;color:#1E8449;border-radius:10px;padding:10px 14px;margin:12px 0}
.store{padding:10px 12px;border-radius:8px;background:#f8f8f8;margin:0 0 10px}
.store strong{display:block}
.store span{font-size:14px;color:#555}
.store.none{color:#888}
.btn{display:block;width:100%;font-size:17px;padding:13px;border:0;border-radius:10px;background:#06C755;color:#fff;font-weight:bold}
.btn2{display:block;width:100%;font-size:16px;padding:11px;border:1px solid #06C755;border-radius:10px;background:#fff;color:#06C755;font-weight:bold}
.sum{display:flex;justify-content:space-between;font-size:15px;margin:2px 0}
.sum.total{font-weight:bold;font-size:17px;border-top:1px solid #eee;padding-top:6px;margin-top:6px}
.note{font-size:13px;color:#E67E22;margin:8px 0 0}
.hide-default{position:absolute;left:-9999px;width:1px;height:1px;overflow:hidden}
.store-of{display:none}`;

/** The page's CSP: only our own form target (plus ECPay's for the map page), inline blocks by hash. */
/** Sends one of our shopper pages (delivery details, store change) with its security headers. */
export function sendShopperPage(res: Response, status: number, html: string, formActions?: string[]): void {
  res.setHeader('Content-Security-Policy', cspFor(html, formActions));
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'same-origin');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'no-store');
  res.status(status).type('text/html; charset=utf-8').send(html);
}

export function cspFor(html: string, formActions: string[] = ["'self'"]): string {
  const hashes = (tag: 'style' | 'script') =>
    [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => `'sha256-${crypto.createHash('sha256').update(m[1]!).digest('base64')}'`);
  const styles = hashes('style');
  const scripts = hashes('script');
  return [
    "default-src 'none'",
    `style-src ${styles.length ? styles.join(' ') : "'none'"}`,
    `script-src ${scripts.length ? scripts.join(' ') : "'none'"}`,
    "img-src 'self' data:",
    `form-action ${formActions.join(' ')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

const FIELD_ORDER: Array<keyof FormErrors> = ['key', 'store', 'name', 'phone', 'address'];

export function deliveryFormPage(state: Extract<PageState, { kind: 'editable' }>, opts: { errors?: FormErrors; saved?: boolean; storeBack?: boolean } = {}): string {
  const errors = opts.errors ?? {};
  const v = state.values;
  const cvsOptions = state.options.filter((o) => o.method === 'cvs');
  const keyId = (k: string) => `k-${k}`;
  // Which fields show for the checked method (where :has() works; all show elsewhere).
  const css =
    BASE_CSS +
    `\nform:has(#${keyId('home')}:checked) .cvs-only{display:none}` +
    (cvsOptions.length ? `\nform:not(:has(#${keyId('home')}:checked)) .home-only{display:none}` : '') +
    cvsOptions.map((o) => `\nform:has(#${keyId(o.key)}:checked) .store-of-${o.key}{display:block}`).join('') +
    `\nform:not(:has(.optin:checked)) .store-of{display:block}`;
  const goods = state.items.lines.reduce((a, l) => a + l.line_total, 0);
  const err = (f: keyof FormErrors) => (errors[f] ? `<p class="err" id="err-${f}">${esc(errors[f]!)}</p>` : '');
  const bad = (f: keyof FormErrors) => (errors[f] ? ' bad' : '');
  const errorList = FIELD_ORDER.filter((f) => errors[f]).map((f) => `<li>${esc(errors[f]!)}</li>`).join('');

  const optionRows = state.options
    .map(
      (o) => `<label class="opt"><input class="optin" type="radio" name="key" id="${keyId(o.key)}" value="${esc(o.key)}"${v.key === o.key ? ' checked' : ''}>
<span>${esc(deliveryLabel(o))}</span><small>${esc(DELIVERY_FORM.feeSuffix(o.effectiveFee))}</small></label>`,
    )
    .join('\n');

  const storeBlocks = cvsOptions
    .map((o) => {
      const s = state.store && state.store.subType === o.subType ? state.store : null;
      const inner = s
        ? `<div class="store" id="store-${esc(o.key)}"><strong>${esc(s.name)}</strong><span>${esc(s.address)}</span></div>`
        : `<div class="store none">${esc(DELIVERY_FORM.noStore)}</div>`;
      return `<div class="store-of store-of-${esc(o.key)}">${inner}</div>`;
    })
    .join('\n');

  const body = `<header><h1>${esc(DELIVERY_FORM.title)}</h1><p>${esc(DELIVERY_FORM.order(state.order.order_no))}</p></header>
<main>
${opts.saved ? `<div class="ok" id="saved">${esc(DELIVERY_FORM.savedTitle)}：${esc(DELIVERY_FORM.savedBody)}</div>` : state.ready ? `<div class="ok">${esc(DELIVERY_FORM.readyNote)}</div>` : ''}
${errorList ? `<div class="errors" id="errors" role="alert"><p>${esc(DELIVERY_FORM.errorsTitle)}</p><ul>${errorList}</ul></div>` : ''}
<form method="post" action="/delivery/${esc(state.ref)}" accept-charset="UTF-8" novalidate>
<input type="hidden" name="_csrf" value="${esc(state.csrf)}">
<button class="hide-default" type="submit" name="op" value="save" tabindex="-1" aria-hidden="true">${esc(DELIVERY_FORM.submit)}</button>
<section class="card${bad('key')}"><h2>${esc(DELIVERY_FORM.methodLegend)}</h2>
${optionRows}
${err('key')}
</section>
${cvsOptions.length ? `<section class="card cvs-only${bad('store')}"><h2>${esc(DELIVERY_FORM.store)}</h2>
${storeBlocks}
<button class="btn2" type="submit" name="op" value="map" id="choose-store">${esc(state.store ? DELIVERY_FORM.changeStore : DELIVERY_FORM.chooseStore)}</button>
<p class="hint">${esc(DELIVERY_FORM.storeHint)}</p>
${err('store')}
</section>` : ''}
<section class="card">
<div class="${bad('name').trim()}"><label class="f" for="name">${esc(DELIVERY_FORM.name)}</label>
<input class="t" id="name" name="name" type="text" autocomplete="name" maxlength="20" value="${esc(v.name)}">
<p class="hint">${esc(DELIVERY_FORM.nameHint)}</p>${err('name')}</div>
<div class="${bad('phone').trim()}"><label class="f" for="phone">${esc(DELIVERY_FORM.phone)}</label>
<input class="t" id="phone" name="phone" type="tel" inputmode="tel" autocomplete="tel" maxlength="20" value="${esc(v.phone)}" placeholder="0912345678">
<p class="hint">${esc(DELIVERY_FORM.phoneHint)}</p>${err('phone')}</div>
<div class="home-only">
<label class="f" for="zip">${esc(DELIVERY_FORM.zip)}</label>
<input class="t" id="zip" name="zip" type="text" inputmode="numeric" autocomplete="postal-code" maxlength="6" value="${esc(v.zip)}">
<div class="${bad('address').trim()}"><label class="f" for="address">${esc(DELIVERY_FORM.address)}</label>
<textarea id="address" name="address" autocomplete="street-address" maxlength="120">${esc(v.address)}</textarea>${err('address')}</div>
</div>
</section>
<section class="card">
<div class="sum"><span>${esc(DELIVERY_FORM.goods)}</span><span>${esc(twd(goods))}</span></div>
${state.items.adjustments
  .map((a) => `<div class="sum"><span>${esc(a.label)}</span><span>${a.amount < 0 ? '−' : ''}${esc(twd(Math.abs(a.amount)))}</span></div>`)
  .join('\n')}
${state.ready ? `<div class="sum total"><span>${esc(DELIVERY_FORM.total)}</span><span id="total">${esc(twd(state.order.total))}</span></div>` : ''}
<p class="note">${esc(DELIVERY_FORM.holdUntil(taipeiTime(state.order.hold_expires_at)))}</p>
</section>
<button class="btn" type="submit" name="op" value="save" id="submit">${esc(DELIVERY_FORM.submit)}</button>
</form>
</main>`;
  return layout(DELIVERY_FORM.title, css, body);
}

export function layout(title: string, css: string, body: string): string {
  return `<!doctype html>
<html lang="zh-Hant-TW"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${esc(title)}</title>
<style>${css}</style></head>
<body>
${body}
</body></html>`;
}

/** A page that says why the form cannot be used (or that something went wrong), never a stack trace. */
export function deliveryMessagePage(title: string, body: string, tone: 'ok' | 'bad', delivery: DeliveryDetails | null = null): string {
  const color = tone === 'ok' ? '#06C755' : '#E74C3C';
  const css = `body{font-family:-apple-system,"PingFang TC","Noto Sans TC",sans-serif;margin:0;padding:40px 24px;text-align:center;color:#222}
h1{color:${color};font-size:21px}p{line-height:1.6}small{color:#888}
dl{display:inline-grid;grid-template-columns:auto auto;gap:6px 14px;text-align:left;margin:8px auto 16px;padding:12px 16px;background:#f5f6f7;border-radius:10px}
dt{color:#888}dd{margin:0;font-weight:bold}`;
  // What the order will ship with (phone masked): a paid order's details stay visible, read-only.
  const rows = delivery
    ? [
        [DELIVERY_TEXT.method, deliveryLabel(delivery)],
        [DELIVERY_TEXT.recipient, `${delivery.recipientName} ${maskPhone(delivery.recipientPhone)}`],
        delivery.method === 'cvs'
          ? [DELIVERY_TEXT.store, `${delivery.storeName ?? ''} ${delivery.storeAddress ?? ''}`]
          : [DELIVERY_TEXT.address, `${delivery.recipientZip ?? ''} ${delivery.recipientAddress ?? ''}`.trim()],
      ]
    : [];
  const summary = rows.length ? `<dl id="delivery">${rows.map(([k, v]) => `<dt>${esc(k!)}</dt><dd>${esc(v!)}</dd>`).join('')}</dl>` : '';
  return layout(title, css, `<h1>${esc(title)}</h1><p>${esc(body)}</p>${summary}<p><small>${esc(PAGE.backToLine)}</small></p>`);
}

export const closedBody: Record<string, string> = {
  'not-found': DELIVERY_FORM.notFoundBody,
  'link-expired': DELIVERY_FORM.linkExpiredBody,
  'order-closed': DELIVERY_FORM.orderClosedBody,
  'order-paid': DELIVERY_FORM.orderPaidBody,
  'payment-started': DELIVERY_FORM.paymentStartedBody,
};

