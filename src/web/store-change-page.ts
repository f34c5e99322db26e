import type { StoreView } from '../domain/store-change';
import { escapeHtml } from '../html';
import { chainName } from '../line/notifier';
import { PAGE, STORE_CHANGE } from '../texts';
import { layout, SHOPPER_PAGE_CSS } from './delivery-page';

/**
 * The shopper's store-change pages (GET/POST /store-change/:ref): no script, zh-TW, every value
 * escaped; inline styles are allowed by hash (delivery-page.ts cspFor).
 */
const esc = escapeHtml;

const CSS = SHOPPER_PAGE_CSS + `body{line-height:1.6}
.store{padding:10px 12px;border-radius:8px;background:#f8f8f8;margin:8px 0}
.store strong{display:block}
.store span{font-size:14px;color:#555}
.btn{display:block;width:100%;font-size:17px;padding:13px;border:0;border-radius:10px;background:#06C755;color:#fff;font-weight:bold;text-align:center;text-decoration:none}
h2.ok{color:#06C755}h2.bad{color:#E74C3C}
small{color:#888}`;

const storeBox = (label: string, s: StoreView, id: string) =>
  `<p>${esc(label)}</p><div class="store" id="${id}"><strong>${esc(`${chainName(s.subType)} ${s.name}`)}</strong>${s.address ? `<span>${esc(s.address)}</span>` : ''}</div>`;

/** The open link: the closed store and the button that opens ECPay's map for the same chain. */
export function storeChangeOpenPage(args: { ref: string; csrf: string; orderNo: string; closedStore: StoreView }): string {
  const body = `<header><h1>${esc(STORE_CHANGE.pageTitle)}</h1><p>${esc(STORE_CHANGE.order(args.orderNo))}</p></header>
<main><section class="card">
<p id="intro">${esc(STORE_CHANGE.intro(chainName(args.closedStore.subType)))}</p>
${storeBox(STORE_CHANGE.closedStore, args.closedStore, 'closed-store')}
</section>
<form method="post" action="/store-change/${esc(args.ref)}" accept-charset="UTF-8">
<input type="hidden" name="_csrf" value="${esc(args.csrf)}">
<button class="btn" type="submit" name="op" value="map" id="choose-store">${esc(STORE_CHANGE.chooseStore)}</button>
</form>
<p><small>${esc(PAGE.backToLine)}</small></p></main>`;
  return layout(STORE_CHANGE.pageTitle, CSS, body);
}

/** A result or a reason: a title, a sentence, optionally the store and a "try again" link. */
export function storeChangeMessagePage(args: { title: string; body: string; tone: 'ok' | 'bad'; store?: { label: string; view: StoreView }; retryRef?: string }): string {
  const body = `<header><h1>${esc(STORE_CHANGE.pageTitle)}</h1></header>
<main><section class="card">
<h2 class="${args.tone}" id="title">${esc(args.title)}</h2>
<p id="message">${esc(args.body)}</p>
${args.store ? storeBox(args.store.label, args.store.view, 'store') : ''}
</section>
${args.retryRef ? `<a class="btn" id="retry" href="/store-change/${esc(args.retryRef)}">${esc(STORE_CHANGE.tryAgain)}</a>` : ''}
<p><small>${esc(PAGE.backToLine)}</small></p></main>`;
  return layout(args.title, CSS, body);
}
