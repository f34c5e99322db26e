import sharp from 'sharp';
import { parseCommand } from '../../src/line/command-parser';
import { MAX_RICH_MENU_IMAGE_BYTES } from '../../src/line/rich-menu-setup';
import { renderRichMenuPng, richMenuSvg } from '../../src/line/rich-menu-images';
import { RICH_MENU_LAYOUTS, RICH_MENU_ROLES, richMenuName, richMenuRequest, roleOfRichMenuName } from '../../src/line/rich-menus';

/** The contract's chat commands (CONTRACT.md, "Chat interface"). */
const SHOPPER_COMMANDS = ['商品', '購物車', '結帳', '訂單', '說明', '點數', '錢包', '會員'];
const OWNER_COMMANDS = ['今日訂單', '庫存', '待出貨', '後台'];

describe('rich menu layouts', () => {
  const at = new Date('2026-12-04T02:00:00Z');

  test.each(RICH_MENU_ROLES)('the %s menu areas tile its image exactly, with no gap or overlap', (role) => {
    const req = richMenuRequest(role, at);
    const { width, height } = req.size as { width: number; height: number };
    const covered = new Uint8Array(width * height);
    for (const { bounds } of req.areas!) {
      const b = bounds as { x: number; y: number; width: number; height: number };
      expect(b.x + b.width).toBeLessThanOrEqual(width);
      expect(b.y + b.height).toBeLessThanOrEqual(height);
      for (let y = b.y; y < b.y + b.height; y++) {
        for (let x = b.x; x < b.x + b.width; x++) covered[y * width + x]! += 1;
      }
    }
    expect(covered.every((n) => n === 1)).toBe(true);
    expect(req.chatBarText!.length).toBeLessThanOrEqual(14);
  });

  test('every area sends a chat command of the contract as a message, labelled with the word it shows', () => {
    const texts = (role: 'shopper' | 'owner') =>
      richMenuRequest(role, at).areas!.map((a) => {
        const action = a.action as { type: string; label: string; text: string };
        expect(action.type).toBe('message');
        expect(action.label.length).toBeLessThanOrEqual(20);
        return action.text;
      });
    const shopper = texts('shopper');
    expect(shopper).toEqual(expect.arrayContaining(['商品', '購物車', '訂單', '會員', '說明']));
    expect(shopper.some((t) => t === '點數' || t === '錢包')).toBe(true);
    for (const t of shopper) expect(SHOPPER_COMMANDS).toContain(t);
    const owner = texts('owner');
    expect(owner).toEqual(expect.arrayContaining(OWNER_COMMANDS));
    for (const t of owner) expect([...OWNER_COMMANDS, ...SHOPPER_COMMANDS]).toContain(t);
    for (const role of RICH_MENU_ROLES) {
      for (const cell of RICH_MENU_LAYOUTS[role].cells) expect(cell.label).toBe(cell.command);
    }
  });

  test('the commands the parser already knows reach the command they name', () => {
    const kinds = Object.fromEntries(['商品', '購物車', '訂單', '說明', '今日訂單', '庫存', '待出貨'].map((c) => [c, parseCommand(c).kind]));
    expect(kinds).toEqual({ 商品: 'menu', 購物車: 'cart', 訂單: 'orders', 說明: 'help', 今日訂單: 'owner-today', 庫存: 'owner-stock-list', 待出貨: 'owner-to-ship' });
  });

  test('only names this command gives are recognised as its own', () => {
    expect(roleOfRichMenuName(richMenuName('shopper', at))).toBe('shopper');
    expect(roleOfRichMenuName('lineshop:owner:v0 2025-01-01T00:00:00.000Z')).toBe('owner');
    for (const other of ['summer sale', 'lineshop', 'lineshop:admin:v1', 'LINESHOP:shopper:v1', 'my lineshop:shopper:v1']) {
      expect(roleOfRichMenuName(other)).toBeNull();
    }
  });
});

describe('rich menu pictures (npm run richmenu:images)', () => {
  test.each(RICH_MENU_ROLES)('the %s picture renders as a PNG of the menu size under 1 MB, with every label in it', async (role) => {
    const layout = RICH_MENU_LAYOUTS[role];
    const svg = richMenuSvg(layout);
    for (const cell of layout.cells) expect(svg).toContain(`>${cell.label}</text>`);
    const png = await renderRichMenuPng(layout);
    const meta = await sharp(png).metadata();
    expect({ format: meta.format, width: meta.width, height: meta.height }).toEqual({ format: 'png', ...layout.size });
    expect(png.length).toBeLessThanOrEqual(MAX_RICH_MENU_IMAGE_BYTES);
  });
});
