import type { messagingApi } from '@line/bot-sdk';
import { RICH_MENU } from '../texts';

/**
 * The shop's two rich menus, shopper and owner, as one layout each: the areas sent to LINE and
 * the picture drawn for them (rich-menu-images.ts) come from the same cells, so a tap always
 * lands on the word it shows. Every area is a `message` action sending a chat command of the
 * contract, so a tap is exactly what the user could have typed and the command parser handles it.
 */

export type RichMenuRole = 'shopper' | 'owner';
export const RICH_MENU_ROLES: readonly RichMenuRole[] = ['shopper', 'owner'];

/** Bump when the layout or the pictures change, so menus of an older layout are easy to tell apart in LINE's list. */
export const RICH_MENU_VERSION = 'v1';
/**
 * Every menu `npm run richmenu` creates is named `lineshop:<role>:<version> <ISO time>`. It deletes
 * older menus with this prefix only: menus made in LINE Official Account Manager or by other
 * tools on the same channel are never touched.
 */
export const RICH_MENU_NAME_PREFIX = 'lineshop:';

export type RichMenuIcon =
  | 'bag'
  | 'cart'
  | 'receipt'
  | 'member'
  | 'wallet'
  | 'help'
  | 'calendar'
  | 'truck'
  | 'boxes'
  | 'dashboard';

export interface RichMenuCell {
  /** The chat command the tap sends (contract, "Chat interface"). */
  command: string;
  label: string;
  hint: string;
  icon: RichMenuIcon;
}

export interface RichMenuLayout {
  role: RichMenuRole;
  /** LINE's "full" size: 2500×1686 (width 800–2500, height ≥ 250, width/height ≥ 1.45). */
  size: { width: number; height: number };
  columns: number;
  rows: number;
  chatBarText: string;
  /** Row by row, left to right; columns × rows of them. */
  cells: readonly RichMenuCell[];
}

const SIZE = { width: 2500, height: 1686 };

export const RICH_MENU_LAYOUTS: Readonly<Record<RichMenuRole, RichMenuLayout>> = {
  shopper: {
    role: 'shopper',
    size: SIZE,
    columns: 3,
    rows: 2,
    chatBarText: RICH_MENU.shopperChatBar,
    cells: [
      { command: '商品', ...RICH_MENU.products, icon: 'bag' },
      { command: '購物車', ...RICH_MENU.cart, icon: 'cart' },
      { command: '訂單', ...RICH_MENU.orders, icon: 'receipt' },
      { command: '會員', ...RICH_MENU.member, icon: 'member' },
      { command: '錢包', ...RICH_MENU.wallet, icon: 'wallet' },
      { command: '說明', ...RICH_MENU.help, icon: 'help' },
    ],
  },
  owner: {
    role: 'owner',
    size: SIZE,
    columns: 3,
    rows: 2,
    chatBarText: RICH_MENU.ownerChatBar,
    cells: [
      { command: '今日訂單', ...RICH_MENU.today, icon: 'calendar' },
      { command: '待出貨', ...RICH_MENU.toShip, icon: 'truck' },
      { command: '庫存', ...RICH_MENU.stock, icon: 'boxes' },
      { command: '後台', ...RICH_MENU.admin, icon: 'dashboard' },
      { command: '商品', ...RICH_MENU.ownerProducts, icon: 'bag' },
      { command: '說明', ...RICH_MENU.ownerHelp, icon: 'help' },
    ],
  },
};

export interface Bounds {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Cell `index`'s rectangle; the grid's rounding leftovers go to the inner cells so the areas tile the image exactly. */
export function cellBounds(layout: RichMenuLayout, index: number): Bounds {
  const col = index % layout.columns;
  const row = Math.floor(index / layout.columns);
  const xs = (c: number) => Math.round((c * layout.size.width) / layout.columns);
  const ys = (r: number) => Math.round((r * layout.size.height) / layout.rows);
  return { x: xs(col), y: ys(row), width: xs(col + 1) - xs(col), height: ys(row + 1) - ys(row) };
}

export function richMenuName(role: RichMenuRole, createdAt: Date): string {
  return `${RICH_MENU_NAME_PREFIX}${role}:${RICH_MENU_VERSION} ${createdAt.toISOString()}`;
}

/** The role of a menu this command created (any version), or null for anyone else's menu. */
export function roleOfRichMenuName(name: string): RichMenuRole | null {
  if (!name.startsWith(RICH_MENU_NAME_PREFIX)) return null;
  const role = name.slice(RICH_MENU_NAME_PREFIX.length).split(':')[0];
  return RICH_MENU_ROLES.find((r) => r === role) ?? null;
}

/** The rich menu object for LINE's create endpoint. */
export function richMenuRequest(role: RichMenuRole, createdAt: Date): messagingApi.RichMenuRequest {
  const layout = RICH_MENU_LAYOUTS[role];
  return {
    size: { ...layout.size },
    // Shown open when the chat opens: the menu is how most people find their way around.
    selected: true,
    name: richMenuName(role, createdAt),
    chatBarText: layout.chatBarText,
    areas: layout.cells.map((cell, i) => ({
      bounds: cellBounds(layout, i),
      action: { type: 'message', label: cell.label, text: cell.command },
    })),
  };
}
