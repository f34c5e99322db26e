import { randomInt } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { escapeHtml } from '../html';
import type { FormNotifier } from './form-notifier';

export { singleStringFields as stringFields } from '../gateways/ecpay/ecpay-http';

/**
 * Pieces of ECPay's pages and forms shared by the local ECPay sandboxes (AIO payments and
 * logistics): the zh-TW page frame with its sandbox banner, error and auto-submit pages, the server.
 */

/** n random decimal digits. */
export function digits(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String(randomInt(10));
  return s;
}

export function formatTwd(n: number): string {
  return `NT$ ${String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',')}`;
}

/** A zh-TW page in ECPay's colours with the sandbox banner. */
export function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="zh-Hant-TW">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(title)}</title>
  <style>
    body { font-family: system-ui, -apple-system, "PingFang TC", "Noto Sans TC", "Microsoft JhengHei", sans-serif; margin: 0 auto; max-width: 46rem; padding: 1.5rem 1rem; color: #222; }
    h1 { font-size: 1.3rem; border-bottom: 3px solid #00a29a; padding-bottom: .4rem; }
    .sandbox { background: #fff4d6; border: 1px solid #e6c35c; padding: .4rem .7rem; border-radius: .4rem; font-size: .9rem; }
    dl { display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1rem; }
    dt { color: #666; } dd { margin: 0; font-weight: 600; word-break: break-all; }
    button { font-size: 1rem; padding: .55rem 1.4rem; border-radius: .4rem; border: 0; background: #00a29a; color: #fff; margin: .2rem; }
    button.secondary { background: #999; }
    table { border-collapse: collapse; width: 100%; font-size: .9rem; }
    th, td { border-bottom: 1px solid #ddd; padding: .35rem .3rem; text-align: left; vertical-align: top; }
    form.inline { display: inline; }
  </style>
</head>
<body>
  <p class="sandbox">綠界模擬環境（Sandbox）：不會產生真實交易。</p>
${body}
</body>
</html>
`;
}

export function errorPage(code: string, message: string): string {
  return page(
    '綠界科技 - 交易失敗',
    `  <h1>交易失敗</h1>
  <dl>
    <dt>訊息代碼 Message code</dt><dd id="message-code">${escapeHtml(code)}</dd>
    <dt>訊息說明 Message</dt><dd id="message">${escapeHtml(message)}</dd>
  </dl>`,
  );
}

/** A page that posts `fields` to `action` on load, as ECPay's pages send the browser back to a shop. */
export function autoSubmitPage(action: string, fields: Record<string, string>, text: string): string {
  const inputs = Object.entries(fields)
    .map(([k, v]) => `    <input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('\n');
  return page(
    text,
    `  <p>${escapeHtml(text)}</p>
  <form id="result" method="post" action="${escapeHtml(action)}">
${inputs}
    <button type="submit">繼續</button>
  </form>
  <script>document.getElementById('result').submit();</script>`,
  );
}

/** An index page: a table of records with their action buttons (cells are HTML already escaped). */
export function listPage(title: string, heading: string, headers: readonly string[], rows: string, empty: string): string {
  return page(
    title,
    `  <h1>${escapeHtml(heading)}</h1>
  <table>
    <thead><tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>
    <tbody>
${rows || `    <tr><td colspan="${headers.length}">${escapeHtml(empty)}</td></tr>`}
    </tbody>
  </table>`,
  );
}

/** Starts a sandbox's HTTP server; `close` stops its notifications, then the server (once, however often called). */
export async function listenSandbox(
  app: Express,
  port: number,
  host: string,
  notifier: FormNotifier,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${bound}`,
    close: () => {
      closing ??= (async () => {
        const stopped = notifier.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await stopped;
      })();
      return closing;
    },
  };
}
