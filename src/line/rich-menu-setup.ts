import fs from 'node:fs';
import path from 'node:path';
import { HTTPFetchError, messagingApi } from '@line/bot-sdk';
import sharp from 'sharp';
import { PROJECT_ROOT } from '../paths';
import { Timeout, withTimeout } from './line-client';
import { RICH_MENU_LAYOUTS, RICH_MENU_ROLES, richMenuRequest, roleOfRichMenuName, type RichMenuRole } from './rich-menus';

/**
 * `npm run richmenu`: puts the shopper menu up as everyone's default and links the owner menu to
 * every owner, replacing the menus an earlier run made. A rich menu's image cannot be replaced
 * (reference "Upload rich menu image"), so every run creates both menus afresh and then deletes
 * the ones it made before: running it twice leaves exactly two menus.
 */

export const RICH_MENU_IMAGE_DIR = path.join(PROJECT_ROOT, 'assets', 'rich-menus');
export const richMenuImagePath = (role: RichMenuRole): string => path.join(RICH_MENU_IMAGE_DIR, `${role}.png`);

export type RichMenuImages = Readonly<Record<RichMenuRole, Buffer>>;

/** The committed pictures drawn by `npm run richmenu:images`. */
export function loadRichMenuImages(): RichMenuImages {
  return { shopper: fs.readFileSync(richMenuImagePath('shopper')), owner: fs.readFileSync(richMenuImagePath('owner')) };
}

/** LINE's image rules (spec §4.1): JPEG or PNG, at most 1 MB, and here exactly the menu's size. */
export const MAX_RICH_MENU_IMAGE_BYTES = 1024 * 1024;
const LINE_USER_ID = /^U[0-9a-f]{32}$/;

export class RichMenuSetupError extends Error {
  override readonly name = 'RichMenuSetupError';
}

export interface CheckedImage {
  contentType: 'image/png' | 'image/jpeg';
  width: number;
  height: number;
  bytes: number;
}

/** Refuses an image LINE would refuse for this role's menu, before anything is created. */
export async function checkRichMenuImage(role: RichMenuRole, image: Buffer): Promise<CheckedImage> {
  const { width, height } = RICH_MENU_LAYOUTS[role].size;
  let meta: { format?: string; width?: number; height?: number };
  try {
    meta = await sharp(image).metadata();
  } catch {
    throw new RichMenuSetupError(`the ${role} image is not a readable picture`);
  }
  if (meta.format !== 'png' && meta.format !== 'jpeg') {
    throw new RichMenuSetupError(`the ${role} image is ${meta.format ?? 'of an unknown format'}; LINE takes PNG or JPEG`);
  }
  if (meta.width !== width || meta.height !== height) {
    throw new RichMenuSetupError(`the ${role} image is ${meta.width}×${meta.height}; its menu is ${width}×${height}`);
  }
  if (image.length > MAX_RICH_MENU_IMAGE_BYTES) {
    throw new RichMenuSetupError(`the ${role} image has ${image.length} bytes; LINE takes at most ${MAX_RICH_MENU_IMAGE_BYTES}`);
  }
  return { contentType: meta.format === 'png' ? 'image/png' : 'image/jpeg', width, height, bytes: image.length };
}

export interface RichMenuSetupOptions {
  channelAccessToken: string;
  /** LINE_API_BASE_URL and LINE_DATA_API_BASE_URL: the image goes to the data origin. */
  apiBaseUrl: string;
  dataApiBaseUrl: string;
  ownerUserIds: readonly string[];
  images: RichMenuImages;
  now?: () => Date;
  /** Per LINE call; the SDK itself never gives up. */
  timeoutMs?: number;
}

export interface CreatedMenu {
  richMenuId: string;
  name: string;
}

export interface RichMenuSetupResult {
  menus: Record<RichMenuRole, CreatedMenu>;
  /** Owners the owner menu is now linked to (LINE links only those who are friends of the account). */
  linkedOwners: string[];
  /** Menus of earlier runs, now deleted. */
  deleted: CreatedMenu[];
  /** Menus of earlier runs that could not be deleted this time; the next run tries again. */
  notDeleted: Array<CreatedMenu & { error: string }>;
  /** Menus on the channel that this command did not make, left as they are. */
  othersLeftAlone: number;
}

/** One line for an operator: LINE's status, message and details, or what went wrong on the way. */
export function describeLineError(err: unknown): string {
  if (err instanceof HTTPFetchError) {
    let text = err.body;
    try {
      const body = JSON.parse(err.body) as { message?: string; details?: Array<{ property?: string; message?: string }> };
      const details = (body.details ?? []).map((d) => `${d.property ? `${d.property}: ` : ''}${d.message ?? ''}`);
      text = [body.message ?? '', ...details].filter(Boolean).join('; ');
    } catch {
      // Not JSON: LINE's raw text is the best description there is.
    }
    return `LINE answered ${err.status}${text ? ` (${text.slice(0, 500)})` : ''}`;
  }
  if (err instanceof Timeout) return `no answer from LINE (${err.message})`;
  return `could not reach LINE (${err instanceof Error ? err.message : String(err)})`;
}

export async function setupRichMenus(o: RichMenuSetupOptions): Promise<RichMenuSetupResult> {
  const timeoutMs = o.timeoutMs ?? 20_000;
  const badOwners = o.ownerUserIds.filter((id) => !LINE_USER_ID.test(id));
  if (badOwners.length > 0) {
    throw new RichMenuSetupError(`SHOP_OWNER_LINE_USER_IDS: ${badOwners.join(', ')} is not a LINE userId (U and 32 hex digits)`);
  }
  const checked = {} as Record<RichMenuRole, CheckedImage>;
  for (const role of RICH_MENU_ROLES) checked[role] = await checkRichMenuImage(role, o.images[role]);

  const api = new messagingApi.MessagingApiClient({ channelAccessToken: o.channelAccessToken, baseURL: o.apiBaseUrl });
  const data = new messagingApi.MessagingApiBlobClient({ channelAccessToken: o.channelAccessToken, baseURL: o.dataApiBaseUrl });
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await withTimeout(fn(), timeoutMs);
    } catch (err) {
      throw new RichMenuSetupError(`${what}: ${describeLineError(err)}`);
    }
  };

  const before = (await call('list the rich menus', () => api.getRichMenuList())).richmenus;
  const ours = before.filter((m) => roleOfRichMenuName(m.name) !== null);

  const createdAt = (o.now ?? (() => new Date()))();
  const created: Partial<Record<RichMenuRole, CreatedMenu>> = {};
  try {
    for (const role of RICH_MENU_ROLES) {
      const request = richMenuRequest(role, createdAt);
      const { richMenuId } = await call(`create the ${role} menu`, () => api.createRichMenu(request));
      created[role] = { richMenuId, name: request.name! };
      const image = new Blob([new Uint8Array(o.images[role])], { type: checked[role].contentType });
      await call(`upload the ${role} menu's image`, () => data.setRichMenuImage(richMenuId, image));
    }
  } catch (err) {
    // Nothing shows the new menus yet: remove them, so a failed run leaves the channel as it was.
    for (const menu of Object.values(created)) await withTimeout(api.deleteRichMenu(menu.richMenuId), timeoutMs).catch(() => undefined);
    throw err;
  }
  const menus = created as Record<RichMenuRole, CreatedMenu>;

  // From here both new menus are complete, so any mix of old and new menus on screen works; a
  // failure stops before deleting anything and the next run finishes the job.
  await call('make the shopper menu the default', () => api.setDefaultRichMenu(menus.shopper.richMenuId));
  const linkedOwners: string[] = [];
  for (const owner of o.ownerUserIds) {
    await call(`link the owner menu to ${owner}`, () => api.linkRichMenuIdToUser(owner, menus.owner.richMenuId));
    linkedOwners.push(owner);
  }

  const deleted: CreatedMenu[] = [];
  const notDeleted: RichMenuSetupResult['notDeleted'] = [];
  for (const old of ours) {
    const menu = { richMenuId: old.richMenuId, name: old.name };
    try {
      await withTimeout(api.deleteRichMenu(old.richMenuId), timeoutMs);
      deleted.push(menu);
    } catch (err) {
      // 404: already gone (deleted by hand, or by a run at the same time) — which is what we wanted.
      if (err instanceof HTTPFetchError && err.status === 404) deleted.push(menu);
      else notDeleted.push({ ...menu, error: describeLineError(err) });
    }
  }
  return { menus, linkedOwners, deleted, notDeleted, othersLeftAlone: before.length - ours.length };
}

export function formatRichMenuSummary(r: RichMenuSetupResult): string {
  const lines = [
    `shopper menu ${r.menus.shopper.richMenuId} (${r.menus.shopper.name}) is everyone's default`,
    r.linkedOwners.length > 0
      ? `owner menu ${r.menus.owner.richMenuId} (${r.menus.owner.name}) linked to ${r.linkedOwners.length} owner(s): ${r.linkedOwners.join(', ')}`
      : `owner menu ${r.menus.owner.richMenuId} (${r.menus.owner.name}) created, linked to nobody: SHOP_OWNER_LINE_USER_IDS is empty`,
    `deleted ${r.deleted.length} menu(s) of earlier runs${r.deleted.length ? `: ${r.deleted.map((m) => m.richMenuId).join(', ')}` : ''}`,
  ];
  if (r.othersLeftAlone > 0) lines.push(`left alone ${r.othersLeftAlone} menu(s) this command did not make`);
  for (const m of r.notDeleted) lines.push(`could not delete ${m.richMenuId} (${m.name}): ${m.error}; run again to retry`);
  return lines.join('\n');
}
