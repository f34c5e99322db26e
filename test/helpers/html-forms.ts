import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import type express from 'express';

/** Reading our pages and the sandboxes' pages as a browser would: forms, hidden fields, posts. */

export function unescapeHtml(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

export function hiddenInputs(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) {
    out[unescapeHtml(m[1]!)] = unescapeHtml(m[2]!);
  }
  return out;
}

export function formAction(html: string, id: string): string {
  const m = new RegExp(`<form id="${id}"[^>]*action="([^"]+)"`).exec(html);
  if (!m) throw new Error(`no form #${id} in page`);
  return unescapeHtml(m[1]!);
}

/** Posts a form as the shopper's browser would and returns the HTML page. */
export async function browserPost(url: string, fields: Record<string, string>): Promise<{ status: number; html: string }> {
  const res = await axios.post<string>(url, new URLSearchParams(fields).toString(), {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    responseType: 'text',
    validateStatus: () => true,
  });
  return { status: res.status, html: res.data };
}

export async function listen(app: express.Express | ((req: never, res: never) => void)): Promise<{ server: Server; url: string }> {
  const server = createServer(app as Parameters<typeof createServer>[0]);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

export async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

