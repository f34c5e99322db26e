import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { RICH_MENU_IMAGE_DIR, richMenuImagePath } from '../line/rich-menu-setup';
import { renderRichMenuPng } from '../line/rich-menu-images';
import { RICH_MENU_LAYOUTS, RICH_MENU_ROLES } from '../line/rich-menus';

/**
 * `npm run richmenu:images`: redraws assets/rich-menus/<role>.png from the layouts in
 * src/line/rich-menus.ts. The PNGs are committed, so `npm run richmenu` needs no fonts; run this
 * after changing a layout or its words, look at the pictures, and commit them.
 */

/** Without a CJK font librsvg draws every Chinese character as a box; refuse rather than commit that. */
function assertCjkFont(): void {
  let families = '';
  try {
    families = execFileSync('fc-list', [':lang=zh-tw', 'family'], { encoding: 'utf8' });
  } catch {
    // fc-list missing: fontconfig is not installed, so no font can be found either.
  }
  if (!families.trim()) {
    throw new Error('no Traditional Chinese font found (fc-list :lang=zh-tw is empty); install one, e.g. apt-get install fonts-noto-cjk');
  }
}

async function main(): Promise<void> {
  assertCjkFont();
  fs.mkdirSync(RICH_MENU_IMAGE_DIR, { recursive: true });
  for (const role of RICH_MENU_ROLES) {
    const png = await renderRichMenuPng(RICH_MENU_LAYOUTS[role]);
    const file = richMenuImagePath(role);
    fs.writeFileSync(file, png);
    const { width, height } = RICH_MENU_LAYOUTS[role].size;
    console.log(`${path.relative(process.cwd(), file)}: ${width}×${height}, ${(png.length / 1024).toFixed(0)} KB`);
  }
}

main().catch((err) => {
  console.error(`richmenu:images failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
