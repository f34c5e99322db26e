import type { messagingApi } from '@line/bot-sdk';

/**
 * LINE's documented limits (specs/line-messaging.md §0, §3). Every message the bot sends is
 * checked by tests, and the delivery module refuses to send a message that breaks one.
 * Byte limits are applied in UTF-8 bytes with 1 KB = 1,000 bytes, the stricter reading.
 */
export const LIMITS = {
  messagesPerRequest: 5,
  textChars: 5000,
  altTextChars: 1500,
  bubbleBytes: 30_000,
  carouselBytes: 50_000,
  carouselBubbles: 12,
  postbackData: 300,
  displayText: 300,
  flexButtonLabel: 40,
  quickReplyItems: 13,
  quickReplyLabel: 20,
  quickReplyImageUrl: 2000,
  actionText: 300,
  clipboardText: 1000,
  uriChars: 1000,
} as const;

const bytes = (o: unknown) => Buffer.byteLength(JSON.stringify(o), 'utf8');

/**
 * LINE fetches Flex images itself and only over HTTPS. The one exception we allow is plain HTTP
 * on this machine's loopback (the sandbox and tests, whose LINE double never fetches them): an
 * http URL anywhere else would be refused by LINE, so it is refused here first.
 */
export function isAcceptableImageUrl(url: string): boolean {
  if (url.startsWith('https://')) return true;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' && (u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(u.hostname));
  } catch {
    return false;
  }
}

/** Action types by where LINE accepts them (spec §3.5): camera and location only in quick replies, richmenuswitch only in rich menus. */
const FLEX_ACTIONS = new Set(['postback', 'message', 'uri', 'datetimepicker', 'clipboard']);
const QUICK_REPLY_ACTIONS = new Set(['postback', 'message', 'uri', 'datetimepicker', 'camera', 'cameraRoll', 'location', 'clipboard']);

function checkAction(a: Record<string, unknown>, where: string, labelMax: number, allowed: ReadonlySet<string>, labelRequired: boolean, out: string[]): void {
  if (typeof a.type !== 'string' || !allowed.has(a.type)) out.push(`${where}.type ${String(a.type)} not allowed here`);
  const label = a.label;
  if (typeof label === 'string' && label.length > labelMax) out.push(`${where}.label longer than ${labelMax}`);
  if (labelRequired && (typeof label !== 'string' || label.length === 0)) out.push(`${where}.label missing`);
  if (a.type === 'postback') {
    if (typeof a.data !== 'string' || a.data.length === 0) out.push(`${where}.data missing`);
    else if (a.data.length > LIMITS.postbackData) out.push(`${where}.data longer than ${LIMITS.postbackData}`);
    if (typeof a.displayText === 'string' && a.displayText.length > LIMITS.displayText) out.push(`${where}.displayText too long`);
  }
  if (a.type === 'message') {
    if (typeof a.text !== 'string' || a.text.length === 0) out.push(`${where}.text missing`);
    else if (a.text.length > LIMITS.actionText) out.push(`${where}.text longer than ${LIMITS.actionText}`);
  }
  if (a.type === 'clipboard') {
    if (typeof a.clipboardText !== 'string' || a.clipboardText.length === 0) out.push(`${where}.clipboardText missing`);
    else if (a.clipboardText.length > LIMITS.clipboardText) out.push(`${where}.clipboardText longer than ${LIMITS.clipboardText}`);
  }
  if (a.type === 'uri') {
    if (typeof a.uri !== 'string' || !/^(https?|line|tel):/.test(a.uri)) out.push(`${where}.uri invalid`);
    else if (a.uri.length > LIMITS.uriChars) out.push(`${where}.uri longer than ${LIMITS.uriChars}`);
  }
}

function walk(node: unknown, where: string, out: string[]): void {
  if (Array.isArray(node)) {
    node.forEach((n, i) => walk(n, `${where}[${i}]`, out));
    return;
  }
  if (!node || typeof node !== 'object') return;
  const o = node as Record<string, unknown>;
  if (o.type === 'button' && !o.action) out.push(`${where}: button without action`);
  if (o.type === 'text' && typeof o.text === 'string' && o.text.length === 0 && !o.contents) out.push(`${where}: empty text`);
  if (o.type === 'image' && (typeof o.url !== 'string' || !isAcceptableImageUrl(o.url))) out.push(`${where}: image url must be https`);
  for (const [k, v] of Object.entries(o)) {
    if (k === 'action' && v && typeof v === 'object') {
      checkAction(v as Record<string, unknown>, `${where}.action`, LIMITS.flexButtonLabel, FLEX_ACTIONS, o.type === 'button', out);
    }
    else walk(v, `${where}.${k}`, out);
  }
}

/** Returns a list of violations; empty means LINE will accept the messages' shape and size. */
export function checkMessages(messages: readonly messagingApi.Message[]): string[] {
  const out: string[] = [];
  if (messages.length < 1 || messages.length > LIMITS.messagesPerRequest) {
    out.push(`message count ${messages.length} not in 1..${LIMITS.messagesPerRequest}`);
  }
  messages.forEach((m, i) => {
    const w = `messages[${i}]`;
    const msg = m as unknown as Record<string, unknown>;
    if (msg.type === 'text') {
      const text = msg.text;
      if (typeof text !== 'string' || text.length === 0) out.push(`${w}.text empty`);
      else if (text.length > LIMITS.textChars) out.push(`${w}.text longer than ${LIMITS.textChars}`);
    } else if (msg.type === 'flex') {
      const alt = msg.altText;
      if (typeof alt !== 'string' || alt.length === 0) out.push(`${w}.altText empty`);
      else if (alt.length > LIMITS.altTextChars) out.push(`${w}.altText longer than ${LIMITS.altTextChars}`);
      const c = msg.contents as Record<string, unknown> | undefined;
      if (!c) out.push(`${w}.contents missing`);
      else if (c.type === 'bubble') {
        if (bytes(c) > LIMITS.bubbleBytes) out.push(`${w} bubble larger than ${LIMITS.bubbleBytes} bytes`);
      } else if (c.type === 'carousel') {
        const bubbles = (c.contents as unknown[]) ?? [];
        if (bubbles.length < 1 || bubbles.length > LIMITS.carouselBubbles) out.push(`${w} carousel has ${bubbles.length} bubbles`);
        if (bytes(c) > LIMITS.carouselBytes) out.push(`${w} carousel larger than ${LIMITS.carouselBytes} bytes`);
        bubbles.forEach((b, j) => {
          if (bytes(b) > LIMITS.bubbleBytes) out.push(`${w}.contents[${j}] bubble larger than ${LIMITS.bubbleBytes} bytes`);
        });
      } else out.push(`${w}.contents type must be bubble or carousel`);
      walk(c, `${w}.contents`, out);
    } else if (msg.type !== 'sticker' && msg.type !== 'image') {
      out.push(`${w}.type ${String(msg.type)} not used by this bot`);
    }
    const qr = msg.quickReply as { items?: Array<Record<string, unknown>> } | undefined;
    if (qr) {
      const items = Array.isArray(qr.items) ? qr.items : [];
      if (items.length < 1 || items.length > LIMITS.quickReplyItems) out.push(`${w}.quickReply has ${items.length} items`);
      items.forEach((it, j) => {
        const iw = `${w}.quickReply.items[${j}]`;
        if (it.type !== 'action') out.push(`${iw}.type must be action`);
        if (it.imageUrl !== undefined && (typeof it.imageUrl !== 'string' || !/^https:\/\//.test(it.imageUrl) || it.imageUrl.length > LIMITS.quickReplyImageUrl)) {
          out.push(`${iw}.imageUrl must be https and at most ${LIMITS.quickReplyImageUrl} characters`);
        }
        if (!it.action || typeof it.action !== 'object') out.push(`${iw} without action`);
        else checkAction(it.action as Record<string, unknown>, `${iw}.action`, LIMITS.quickReplyLabel, QUICK_REPLY_ACTIONS, true, out);
      });
    }
  });
  return out;
}
