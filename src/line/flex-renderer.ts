import fs from 'node:fs';
import path from 'node:path';
import type { messagingApi } from '@line/bot-sdk';
import { FLEX_TEMPLATES_DIR } from '../paths';

/**
 * Fills the JSON templates in flex-templates/ (editable in LINE's Flex Message Simulator).
 * - a string that is exactly "{{name}}" becomes the value as is (string, number or object);
 * - "{{name}}" inside a longer string is interpolated as text;
 * - an array element "{{...name}}" is replaced by the elements of the array value.
 * A missing variable is a programming error and throws.
 */

type FlexComponent = messagingApi.FlexComponent;
type FlexBubble = messagingApi.FlexBubble;

export interface TemplateVars {
  product: {
    imageUrl: string; name: string; description: string; price: string; stockText: string;
    stockColor: string; skuText: string; buttons: FlexComponent[];
  };
  'catalog-more': { title: string; hint: string; buttonLabel: string; data: string };
  cart: {
    title: string; lines: FlexComponent[]; subtotalLabel: string; subtotal: string; checkoutLabel: string;
    checkoutData: string; continueLabel: string; menuData: string;
  };
  'cart-line': { name: string; lineTotal: string; unitText: string; qty: string; decData: string; incData: string };
  'order-line': { text: string; lineTotal: string };
  'order-created': {
    title: string; orderNo: string; lines: FlexComponent[]; totalLabel: string; total: string; holdText: string;
    prompt: string; buttons: FlexComponent[];
  };
  'postback-button': { style: 'primary' | 'secondary' | 'link'; label: string; data: string };
  'orders-list': { title: string; rows: FlexComponent[] };
  'order-row': { orderNo: string; summary: string; viewLabel: string; data: string };
  'order-detail': {
    orderNo: string; statusText: string; statusColor: string; lines: FlexComponent[]; totalLabel: string;
    total: string; notes: FlexComponent[]; buttons: FlexComponent[];
  };
  note: { text: string };
  receipt: {
    title: string; orderLabel: string; orderNo: string; methodLabel: string; method: string; amountLabel: string;
    amount: string; lines: FlexComponent[]; thanks: string;
  };
  'payment-info': { title: string; orderNo: string; rows: FlexComponent[]; hint: string; buttons: FlexComponent[] };
  'info-row': { label: string; value: string };
  'pay-link': {
    title: string; orderNo: string; methodLabel: string; method: string; amountLabel: string; amount: string;
    hint: string; buttonLabel: string; url: string;
  };
  'admin-login': { title: string; body: string; hint: string; buttonLabel: string; url: string };
  'owner-paid': {
    title: string; orderLabel: string; orderNo: string; methodLabel: string; method: string; amountLabel: string;
    amount: string; lines: FlexComponent[]; notes: FlexComponent[]; buttons: FlexComponent[];
  };
  /** Every other notice: a title, an optional subtitle, rows of facts, buttons. */
  notice: { title: string; titleColor: string; subtitle: FlexComponent[]; rows: FlexComponent[]; buttons: FlexComponent[] };
  'section-title': { text: string };
  paragraph: { text: string };
  'uri-button': { style: 'primary' | 'secondary' | 'link'; label: string; uri: string };
  'message-button': { style: 'primary' | 'secondary' | 'link'; label: string; text: string };
  'clipboard-button': { style: 'primary' | 'secondary' | 'link'; label: string; clipboardText: string };
  ledger: {
    color: string; title: string; subtitle: string; balanceLabel: string; balance: string; notes: FlexComponent[];
    rows: FlexComponent[]; buttons: FlexComponent[];
  };
  'member-card': {
    color: string; title: string; subtitle: string; qr: FlexComponent[]; codeLabel: string; code: string; validUntil: string;
    rows: FlexComponent[]; hint: string; buttons: FlexComponent[];
  };
  'qr-image': { url: string };
}

export type TemplateName = keyof TemplateVars;

/** Which templates are whole bubbles (the rest are components inside one). */
export const BUBBLE_TEMPLATES = [
  'product', 'catalog-more', 'cart', 'order-created', 'orders-list', 'order-detail', 'receipt', 'payment-info',
  'pay-link', 'owner-paid', 'admin-login', 'ledger', 'member-card', 'notice',
] as const satisfies readonly TemplateName[];
type BubbleTemplate = (typeof BUBBLE_TEMPLATES)[number];

const cache = new Map<string, unknown>();

export function loadTemplate(name: TemplateName): unknown {
  let t = cache.get(name);
  if (t === undefined) {
    t = JSON.parse(fs.readFileSync(path.join(FLEX_TEMPLATES_DIR, `${name}.json`), 'utf8'));
    cache.set(name, t);
  }
  return t;
}

export function listTemplateFiles(): string[] {
  return fs.readdirSync(FLEX_TEMPLATES_DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
}

const WHOLE = /^\{\{(\w+)\}\}$/;
const SPREAD = /^\{\{\.\.\.(\w+)\}\}$/;
const INLINE = /\{\{(\w+)\}\}/g;

function lookup(vars: Record<string, unknown>, key: string, template: string): unknown {
  if (!(key in vars)) throw new Error(`flex template ${template}: missing variable ${key}`);
  return vars[key];
}

function fill(node: unknown, vars: Record<string, unknown>, template: string): unknown {
  if (typeof node === 'string') {
    const whole = WHOLE.exec(node);
    if (whole) return lookup(vars, whole[1]!, template);
    return node.replace(INLINE, (_, k: string) => String(lookup(vars, k, template)));
  }
  if (Array.isArray(node)) {
    const out: unknown[] = [];
    for (const el of node) {
      const spread = typeof el === 'string' ? SPREAD.exec(el) : null;
      if (spread) {
        const v = lookup(vars, spread[1]!, template);
        if (!Array.isArray(v)) throw new Error(`flex template ${template}: ${spread[1]} must be an array`);
        out.push(...v);
      } else out.push(fill(el, vars, template));
    }
    return out;
  }
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = fill(v, vars, template);
    return out;
  }
  return node;
}

export function render<N extends TemplateName>(name: N, vars: TemplateVars[N]): N extends BubbleTemplate ? FlexBubble : FlexComponent {
  return fill(loadTemplate(name), vars as unknown as Record<string, unknown>, name) as never;
}
