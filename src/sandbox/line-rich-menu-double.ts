/**
 * The rich-menu part of the LINE API double: validation of rich menu objects, image upload on the
 * data origin, default menu, per-user links, list/get/delete (reference "Rich menu" and
 * "Per-user rich menu", spec §4.1). Answers use LINE's documented status codes and messages
 * where the reference gives them; a few wordings LINE does not document are marked "ours".
 */
import { randomBytes } from 'node:crypto';
import {
  type Detail,
  detailsBody,
  isObject,
  type JsonObject,
  type Outcome,
  USER_ID_RE,
  validateAction,
} from './line-api-shared';

export const RICH_MENU_LIMITS = {
  minWidth: 800,
  maxWidth: 2500,
  minHeight: 250,
  minAspectRatio: 1.45,
  maxAreas: 20,
  maxImageBytes: 1024 * 1024,
  maxMenus: 1000,
  maxBulkUsers: 500,
} as const;

export interface RichMenuBounds {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A rich menu as GET /v2/bot/richmenu/{id} answers it. */
export interface RichMenuResponse {
  richMenuId: string;
  size: { width: number; height: number };
  selected: boolean;
  name: string;
  chatBarText: string;
  areas: Array<{ bounds: RichMenuBounds; action: JsonObject }>;
}

export interface RichMenuImage {
  contentType: 'image/png' | 'image/jpeg';
  width: number;
  height: number;
  bytes: Buffer;
}

/** What tests and the chat simulator see of a stored menu. */
export interface DoubleRichMenu {
  menu: RichMenuResponse;
  image: RichMenuImage | null;
}

const RICH_MENU_ID_RE = /^richmenu-[0-9a-f]{32}$/;
const NOT_FOUND: Outcome = { status: 404, body: { message: 'Not found' } };
const NO_IMAGE: Outcome = { status: 400, body: { message: 'must upload richmenu image before applying it to user', details: [] } };
const BAD_USER_ID: Outcome = { status: 400, body: { message: "The value for the 'userId' parameter is invalid" } };
const IMAGE_NOT_ALLOWED: Outcome = { status: 400, body: { message: 'The image size is not allowed for richmenu' } };

// ---------------------------------------------------------------------------
// Image headers
// ---------------------------------------------------------------------------

export interface ImageHeader {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); not DHT (C4), JPG (C8), DAC (CC). */
const JPEG_SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/**
 * Reads an image's format and pixel size from its header, the way a server checks an upload
 * without decoding it: PNG's IHDR chunk, or a JPEG's first start-of-frame segment. Null when the
 * bytes are neither.
 */
export function readImageHeader(buf: Buffer): ImageHeader | null {
  if (buf.length >= 24 && buf.subarray(0, 8).equals(PNG_SIGNATURE) && buf.toString('latin1', 12, 16) === 'IHDR') {
    return { format: 'png', width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
  }
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return null;
  let i = 2;
  while (i + 4 <= buf.length) {
    if (buf[i] !== 0xff) return null;
    const marker = buf[i + 1]!;
    if (marker === 0xff) {
      i += 1; // fill byte before a marker
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return null; // end of image / scan data before any frame header
    const length = buf.readUInt16BE(i + 2);
    if (length < 2) return null;
    if (JPEG_SOF.has(marker)) {
      if (i + 9 > buf.length) return null;
      return { format: 'jpeg', height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
    }
    i += 2 + length;
  }
  return null;
}

// ---------------------------------------------------------------------------
// Rich menu object validation
// ---------------------------------------------------------------------------

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/** An integer property >= min; pushes a detail and answers false otherwise. */
function checkInt(obj: JsonObject, key: string, min: number, base: string, out: Detail[]): boolean {
  const v = obj[key];
  const property = base ? `${base}.${key}` : key;
  if (v === undefined || v === null) {
    out.push({ message: 'must be specified', property });
    return false;
  }
  if (!isInt(v)) {
    out.push({ message: 'must be an integer', property });
    return false;
  }
  if (v < min) {
    out.push({ message: `must be greater than or equal to ${min}`, property });
    return false;
  }
  return true;
}

/** A required top-level string, worded like the reference's rich-menu example ("must be specified"). */
function checkString(obj: JsonObject, key: string, max: number, out: Detail[]): void {
  const v = obj[key];
  if (v === undefined || v === null) out.push({ message: 'must be specified', property: key });
  else if (typeof v !== 'string') out.push({ message: 'must be a string', property: key });
  else if (v.length < 1 || v.length > max) out.push({ message: `size must be between 1 and ${max}`, property: key });
}

/** Reference "Rich menu object": every property is required, whatever the SDK's typings say. */
export function validateRichMenuObject(body: JsonObject): Detail[] {
  const out: Detail[] = [];
  const L = RICH_MENU_LIMITS;

  let size: { width: number; height: number } | null = null;
  if (!isObject(body.size)) {
    out.push({ message: 'must be specified', property: 'size' });
  } else {
    const okW = checkInt(body.size, 'width', 1, 'size', out);
    const okH = checkInt(body.size, 'height', 1, 'size', out);
    if (okW && okH) {
      const width = body.size.width as number;
      const height = body.size.height as number;
      const before = out.length;
      if (width < L.minWidth || width > L.maxWidth) {
        out.push({ message: `must be between ${L.minWidth} and ${L.maxWidth}`, property: 'size.width' });
      }
      if (height < L.minHeight) out.push({ message: `must be ${L.minHeight} or more`, property: 'size.height' });
      if (width / height < L.minAspectRatio) {
        out.push({ message: `the aspect ratio (width / height) must be ${L.minAspectRatio} or more`, property: 'size' });
      }
      if (out.length === before) size = { width, height };
    }
  }

  if (body.selected === undefined || body.selected === null) {
    out.push({ message: 'must be specified', property: 'selected' });
  } else if (typeof body.selected !== 'boolean') {
    out.push({ message: 'must be a boolean', property: 'selected' });
  }
  checkString(body, 'name', 300, out);
  checkString(body, 'chatBarText', 14, out);

  const areas = body.areas;
  if (areas === undefined || areas === null) {
    out.push({ message: 'must be specified', property: 'areas' });
  } else if (!Array.isArray(areas)) {
    out.push({ message: 'must be an array', property: 'areas' });
  } else {
    if (areas.length < 1 || areas.length > L.maxAreas) {
      out.push({ message: `size must be between 1 and ${L.maxAreas}`, property: 'areas' });
    }
    areas.forEach((area, i) => validateArea(area, `areas[${i}]`, size, out));
  }
  return out;
}

function validateArea(area: unknown, path: string, size: { width: number; height: number } | null, out: Detail[]): void {
  if (!isObject(area)) {
    out.push({ message: 'must be an object', property: path });
    return;
  }
  const b = area.bounds;
  if (!isObject(b)) {
    out.push({ message: 'must be specified', property: `${path}.bounds` });
  } else {
    const base = `${path}.bounds`;
    const ok = [
      checkInt(b, 'x', 0, base, out),
      checkInt(b, 'y', 0, base, out),
      checkInt(b, 'width', 1, base, out),
      checkInt(b, 'height', 1, base, out),
    ].every(Boolean);
    // Ours: LINE documents no wording for an area that leaves the image.
    if (ok && size) {
      const { x, y, width, height } = b as unknown as RichMenuBounds;
      if (x + width > size.width || y + height > size.height) {
        out.push({ message: `must be within the rich menu (${size.width}x${size.height})`, property: base });
      }
    }
  }
  if (area.action === undefined || area.action === null) {
    out.push({ message: 'must be specified', property: `${path}.action` });
  } else {
    // Rich menu labels are optional, ≤ 20, read aloud by accessibility features (spec §3.5).
    validateAction(area.action, `${path}.action`, { max: 20, required: false }, out, 'richmenu');
  }
}

// ---------------------------------------------------------------------------
// State and endpoints
// ---------------------------------------------------------------------------

export interface RichMenuDouble {
  /** Routes a rich-menu request of the API origin; undefined when the path is not a rich-menu path. */
  routeApi(method: string, path: string): RichMenuRoute | undefined;
  /** Routes a request of the data origin (image upload and download). */
  routeData(method: string, path: string): RichMenuRoute | undefined;
  list(): DoubleRichMenu[];
  get(richMenuId: string): DoubleRichMenu | null;
  defaultRichMenuId(): string | null;
  linkedRichMenuId(userId: string): string | null;
  /** The menu LINE shows `userId`: the per-user link, else the default (reference "Set default rich menu"). */
  richMenuFor(userId: string): DoubleRichMenu | null;
  links(): Record<string, string>;
  reset(): void;
}

export interface RichMenuRoute {
  method: string;
  /** json: the body is a JSON object; binary: raw bytes with their Content-Type; none: no body read. */
  body: 'json' | 'binary' | 'none';
  run(input: { json: JsonObject; bytes: Buffer; contentType: string }): Outcome;
}

interface Stored {
  menu: RichMenuResponse;
  image: RichMenuImage | null;
}

function copyMenu(richMenuId: string, body: JsonObject): RichMenuResponse {
  const size = body.size as { width: number; height: number };
  const areas = (body.areas as JsonObject[]).map((a) => {
    const b = a.bounds as unknown as RichMenuBounds;
    return { bounds: { x: b.x, y: b.y, width: b.width, height: b.height }, action: structuredClone(a.action as JsonObject) };
  });
  return {
    richMenuId,
    size: { width: size.width, height: size.height },
    selected: body.selected as boolean,
    name: body.name as string,
    chatBarText: body.chatBarText as string,
    areas,
  };
}

function publicView(s: Stored): DoubleRichMenu {
  return { menu: structuredClone(s.menu), image: s.image ? { ...s.image } : null };
}

/** `/{prefix}{id}{suffix}` → id, or null. */
function segment(path: string, prefix: string, suffix = ''): string | null {
  if (!path.startsWith(prefix) || !path.endsWith(suffix)) return null;
  const raw = path.slice(prefix.length, path.length - suffix.length);
  if (raw.length === 0 || raw.includes('/')) return null;
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

export function createRichMenuDouble(): RichMenuDouble {
  const menus = new Map<string, Stored>();
  const userLinks = new Map<string, string>();
  let defaultId: string | null = null;

  function forget(richMenuId: string): void {
    menus.delete(richMenuId);
    if (defaultId === richMenuId) defaultId = null;
    for (const [user, id] of userLinks) if (id === richMenuId) userLinks.delete(user);
  }

  function create(json: JsonObject): Outcome {
    const details = validateRichMenuObject(json);
    if (details.length > 0) return { status: 400, body: detailsBody(details) };
    if (menus.size >= RICH_MENU_LIMITS.maxMenus) {
      // Ours: the reference names the 1,000-menu limit as a 400 without its wording.
      return { status: 400, body: { message: `The maximum number of rich menus (${RICH_MENU_LIMITS.maxMenus}) has been reached` } };
    }
    const richMenuId = `richmenu-${randomBytes(16).toString('hex')}`;
    menus.set(richMenuId, { menu: copyMenu(richMenuId, json), image: null });
    return { status: 200, body: { richMenuId } };
  }

  function upload(richMenuId: string, bytes: Buffer, contentType: string): Outcome {
    const type = contentType.split(';')[0]!.trim().toLowerCase();
    if (type !== 'image/png' && type !== 'image/jpeg') {
      return { status: 415, body: { message: `The content type, ${contentType || '(none)'}, is not supported` } };
    }
    const stored = menus.get(richMenuId);
    if (!stored) return NOT_FOUND;
    if (stored.image) return { status: 400, body: { message: 'An image has already been uploaded to the richmenu' } };
    if (bytes.length === 0 || bytes.length > RICH_MENU_LIMITS.maxImageBytes) return IMAGE_NOT_ALLOWED;
    const header = readImageHeader(bytes);
    if (!header || `image/${header.format}` !== type) {
      // Ours: bytes that are not the image their Content-Type names.
      return { status: 400, body: { message: `The image is not a valid ${type === 'image/png' ? 'PNG' : 'JPEG'} image` } };
    }
    if (header.width !== stored.menu.size.width || header.height !== stored.menu.size.height) return IMAGE_NOT_ALLOWED;
    stored.image = { contentType: type, width: header.width, height: header.height, bytes: Buffer.from(bytes) };
    return { status: 200, body: {} };
  }

  function download(richMenuId: string): Outcome {
    const stored = menus.get(richMenuId);
    if (!stored?.image) return NOT_FOUND;
    return { status: 200, body: stored.image.bytes, headers: { 'content-type': stored.image.contentType } };
  }

  function setDefault(richMenuId: string): Outcome {
    const stored = menus.get(richMenuId);
    if (!stored) return NOT_FOUND;
    if (!stored.image) return NO_IMAGE;
    defaultId = richMenuId;
    return { status: 200, body: {} };
  }

  function link(userId: string, richMenuId: string): Outcome {
    if (!USER_ID_RE.test(userId)) return BAD_USER_ID;
    const stored = menus.get(richMenuId);
    if (!stored) return NOT_FOUND;
    if (!stored.image) return NO_IMAGE;
    userLinks.set(userId, richMenuId);
    return { status: 200, body: {} };
  }

  /** The bulk endpoints answer a bad user id with LINE's "property … is invalid" message. */
  function checkUserIds(json: JsonObject): Outcome | null {
    const ids = json.userIds;
    if (!Array.isArray(ids) || ids.length < 1 || ids.length > RICH_MENU_LIMITS.maxBulkUsers) {
      return { status: 400, body: detailsBody([{ message: `size must be between 1 and ${RICH_MENU_LIMITS.maxBulkUsers}`, property: 'userIds' }]) };
    }
    const bad = ids.findIndex((id) => typeof id !== 'string' || !USER_ID_RE.test(id));
    if (bad >= 0) {
      return { status: 400, body: { message: `The property, 'userIds[${bad}]', in the request body is invalid (line: -, column: -)` } };
    }
    return null;
  }

  function bulkLink(json: JsonObject): Outcome {
    const badIds = checkUserIds(json);
    if (badIds) return badIds;
    const richMenuId = json.richMenuId;
    if (typeof richMenuId !== 'string' || !RICH_MENU_ID_RE.test(richMenuId)) {
      return { status: 400, body: detailsBody([{ message: 'invalid richMenuId', property: 'richMenuId' }]) };
    }
    const stored = menus.get(richMenuId);
    if (!stored) return { status: 404, body: { message: 'richmenu not found', details: [] } };
    if (!stored.image) return NO_IMAGE;
    for (const id of json.userIds as string[]) userLinks.set(id, richMenuId);
    return { status: 202, body: {} };
  }

  function bulkUnlink(json: JsonObject): Outcome {
    const badIds = checkUserIds(json);
    if (badIds) return badIds;
    for (const id of json.userIds as string[]) userLinks.delete(id);
    return { status: 202, body: {} };
  }

  const api = (method: string, body: RichMenuRoute['body'], run: RichMenuRoute['run']): RichMenuRoute => ({ method, body, run });

  return {
    routeApi(method, path) {
      if (path === '/v2/bot/richmenu') return api('POST', 'json', ({ json }) => create(json));
      if (path === '/v2/bot/richmenu/validate') {
        return api('POST', 'json', ({ json }) => {
          const details = validateRichMenuObject(json);
          return details.length > 0 ? { status: 400, body: detailsBody(details) } : { status: 200, body: {} };
        });
      }
      if (path === '/v2/bot/richmenu/list') {
        return api('GET', 'none', () => ({ status: 200, body: { richmenus: [...menus.values()].map((s) => s.menu) } }));
      }
      if (path === '/v2/bot/richmenu/bulk/link') return api('POST', 'json', ({ json }) => bulkLink(json));
      if (path === '/v2/bot/richmenu/bulk/unlink') return api('POST', 'json', ({ json }) => bulkUnlink(json));
      if (path === '/v2/bot/user/all/richmenu') {
        if (method === 'DELETE') {
          return api('DELETE', 'none', () => {
            defaultId = null;
            return { status: 200, body: {} };
          });
        }
        return api('GET', 'none', () =>
          defaultId ? { status: 200, body: { richMenuId: defaultId } } : { status: 404, body: { message: 'no default richmenu', details: [] } },
        );
      }
      const defaultTarget = segment(path, '/v2/bot/user/all/richmenu/');
      if (defaultTarget !== null) return api('POST', 'none', () => setDefault(defaultTarget));

      const userMenu = /^\/v2\/bot\/user\/([^/]+)\/richmenu(?:\/([^/]+))?$/.exec(path);
      if (userMenu) {
        let userId: string;
        let target: string | undefined;
        try {
          userId = decodeURIComponent(userMenu[1]!);
          target = userMenu[2] === undefined ? undefined : decodeURIComponent(userMenu[2]);
        } catch {
          return undefined;
        }
        if (target !== undefined) return api('POST', 'none', () => link(userId, target));
        if (method === 'DELETE') {
          return api('DELETE', 'none', () => {
            if (!USER_ID_RE.test(userId)) return BAD_USER_ID;
            userLinks.delete(userId);
            return { status: 200, body: {} };
          });
        }
        return api('GET', 'none', () => {
          if (!USER_ID_RE.test(userId)) return BAD_USER_ID;
          const id = userLinks.get(userId);
          return id ? { status: 200, body: { richMenuId: id } } : { status: 404, body: { message: 'the user has no richmenu', details: [] } };
        });
      }

      const id = segment(path, '/v2/bot/richmenu/');
      if (id !== null && id !== 'alias' && id !== 'batch') {
        if (method === 'DELETE') {
          return api('DELETE', 'none', () => {
            if (!menus.has(id)) return NOT_FOUND;
            forget(id);
            return { status: 200, body: {} };
          });
        }
        return api('GET', 'none', () => {
          const stored = menus.get(id);
          return stored ? { status: 200, body: stored.menu } : NOT_FOUND;
        });
      }
      return undefined;
    },

    routeData(method, path) {
      const id = segment(path, '/v2/bot/richmenu/', '/content');
      if (id === null) return undefined;
      if (method === 'GET') return api('GET', 'none', () => download(id));
      return api('POST', 'binary', ({ bytes, contentType }) => upload(id, bytes, contentType));
    },

    list: () => [...menus.values()].map(publicView),
    get: (richMenuId) => {
      const s = menus.get(richMenuId);
      return s ? publicView(s) : null;
    },
    defaultRichMenuId: () => defaultId,
    linkedRichMenuId: (userId) => userLinks.get(userId) ?? null,
    richMenuFor(userId) {
      const id = userLinks.get(userId) ?? defaultId;
      const s = id ? menus.get(id) : undefined;
      return s ? publicView(s) : null;
    },
    links: () => Object.fromEntries(userLinks),
    reset() {
      menus.clear();
      userLinks.clear();
      defaultId = null;
    },
  };
}
