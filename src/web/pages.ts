import { escapeHtml } from '../html';
import { PAGE } from '../texts';

const esc = escapeHtml;

/** A small zh-TW page for LINE's in-app browser. Every value is HTML-escaped. */
export function resultPage(args: { title: string; body: string; tone: 'ok' | 'wait' | 'bad'; action?: { label: string; href: string } }): string {
  const color = args.tone === 'ok' ? '#06C755' : args.tone === 'wait' ? '#E67E22' : '#E74C3C';
  const icon = args.tone === 'ok' ? '✅' : args.tone === 'wait' ? '⏳' : '⚠️';
  const action = args.action
    ? `<p><a class="btn" href="${esc(args.action.href)}">${esc(args.action.label)}</a></p>`
    : '';
  return `<!doctype html>
<html lang="zh-Hant-TW"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(args.title)}</title>
<style>body{font-family:-apple-system,"PingFang TC","Noto Sans TC",sans-serif;margin:0;padding:32px 20px;text-align:center;color:#222}
h1{color:${color};font-size:22px}.icon{font-size:48px}.btn{display:inline-block;margin-top:16px;padding:12px 24px;border-radius:8px;background:#06C755;color:#fff;text-decoration:none}
small{color:#888}</style></head>
<body><div class="icon">${icon}</div><h1>${esc(args.title)}</h1><p>${esc(args.body)}</p>${action}<p><small>${esc(PAGE.backToLine)}</small></p></body></html>`;
}

export const pages = {
  paid: () => resultPage({ title: PAGE.paidTitle, body: PAGE.paidBody, tone: 'ok' }),
  processing: () => resultPage({ title: PAGE.processingTitle, body: PAGE.processingBody, tone: 'wait' }),
  failed: (retryHref?: string) =>
    resultPage({ title: PAGE.failedTitle, body: PAGE.failedBody, tone: 'bad', action: retryHref ? { label: PAGE.retryPay, href: retryHref } : undefined }),
  notFound: () => resultPage({ title: PAGE.notFoundTitle, body: PAGE.notFoundBody, tone: 'bad' }),
  expired: () => resultPage({ title: PAGE.expiredTitle, body: PAGE.expiredBody, tone: 'bad' }),
  alreadyPaid: () => resultPage({ title: PAGE.alreadyPaidTitle, body: PAGE.alreadyPaidBody, tone: 'ok' }),
  superseded: () => resultPage({ title: PAGE.supersededTitle, body: PAGE.supersededBody, tone: 'bad' }),
};
