import sharp from 'sharp';
import { escapeHtml } from '../html';
import { cellBounds, type RichMenuIcon, type RichMenuLayout } from './rich-menus';

/**
 * Draws a rich menu's picture from its layout as SVG and renders it to PNG with sharp (librsvg).
 * Icons are plain vector shapes (no emoji: their look depends on the machine); labels are text in
 * a CJK font, which must be installed where this runs (`npm run richmenu:images` checks).
 */

export const SHOP_GREEN = '#06C755';
const INK = '#1F2D25';
const HINT = '#5B6B63';
const OWNER_INK = '#24313F';
export const FONT_FAMILY = "'Noto Sans CJK TC', 'Noto Sans TC', 'PingFang TC', 'Microsoft JhengHei', sans-serif";

/** White line icons in a 240×240 box centred on (0, 0). */
const ICONS: Record<RichMenuIcon, string> = {
  // Handles that reach into the bag, so it does not read as a padlock.
  bag:
    `<path d="M-94 -40 h188 l-14 140 h-160 z"/><path d="M-44 -6 v-46 a44 44 0 0 1 88 0 v46"/>` +
    `<circle cx="-44" cy="-6" r="10" fill="#fff"/><circle cx="44" cy="-6" r="10" fill="#fff"/>`,
  cart:
    `<path d="M-112 -78 h34 l30 118 h118 l26 -88 h-160"/>` +
    `<circle cx="-32" cy="84" r="15" fill="#fff"/><circle cx="58" cy="84" r="15" fill="#fff"/>`,
  receipt:
    `<path d="M-66 -100 h132 v200 l-22 -14 l-22 14 l-22 -14 l-22 14 l-22 -14 l-22 14 z"/>` +
    `<path d="M-34 -50 h68 M-34 -6 h68 M-34 38 h40"/>`,
  member:
    `<rect x="-104" y="-74" width="208" height="148" rx="20"/>` +
    `<circle cx="-42" cy="-12" r="24"/><path d="M-82 46 a40 34 0 0 1 80 0"/><path d="M22 -22 h52 M22 22 h52"/>`,
  wallet:
    `<path d="M-70 -66 l96 -38 l16 38"/><rect x="-100" y="-66" width="200" height="150" rx="22"/>` +
    `<path d="M100 -20 h-56 a28 28 0 0 0 0 56 h56"/><circle cx="46" cy="8" r="9" fill="#fff"/>`,
  help: `<path d="M-46 -42 a46 46 0 1 1 66 41 c-14 7 -20 16 -20 34 v8"/><circle cx="0" cy="86" r="14" fill="#fff"/>`,
  calendar:
    `<rect x="-96" y="-74" width="192" height="170" rx="20"/><path d="M-96 -24 h192 M-48 -102 v44 M48 -102 v44"/>` +
    `<path d="M-42 32 l28 28 l58 -58"/>`,
  truck:
    `<rect x="-116" y="-62" width="134" height="110" rx="10"/><path d="M18 -24 h54 l42 42 v30 h-96 z"/>` +
    `<circle cx="-66" cy="64" r="22" fill="${SHOP_GREEN}"/><circle cx="66" cy="64" r="22" fill="${SHOP_GREEN}"/>`,
  boxes:
    `<rect x="-104" y="0" width="98" height="88" rx="8"/><rect x="6" y="0" width="98" height="88" rx="8"/>` +
    `<rect x="-49" y="-96" width="98" height="88" rx="8"/><path d="M-55 0 v26 M55 0 v26 M0 -96 v26"/>`,
  dashboard:
    `<rect x="-108" y="-84" width="216" height="144" rx="16"/><path d="M-44 104 h88 M0 60 v44"/>` +
    `<path d="M-58 30 v-30 M-12 30 v-62 M34 30 v-44 M70 30 v-20"/>`,
};

function cellSvg(layout: RichMenuLayout, index: number): string {
  const cell = layout.cells[index]!;
  const b = cellBounds(layout, index);
  const owner = layout.role === 'owner';
  const gap = 22;
  const cx = b.x + b.width / 2;
  const iconY = b.y + b.height * 0.33;
  const radius = Math.min(b.width, b.height) * 0.19;
  const scale = radius / 150;
  return [
    `<rect x="${b.x + gap}" y="${b.y + gap}" width="${b.width - 2 * gap}" height="${b.height - 2 * gap}" rx="44"`,
    ` fill="${owner ? '#F3F6F9' : '#F2FBF5'}" stroke="${owner ? '#DCE3EA' : '#D3F1DF'}" stroke-width="4"/>`,
    `<circle cx="${cx}" cy="${iconY}" r="${radius}" fill="${owner ? OWNER_INK : SHOP_GREEN}"/>`,
    owner ? `<circle cx="${cx}" cy="${iconY}" r="${radius + 12}" fill="none" stroke="${SHOP_GREEN}" stroke-width="10"/>` : '',
    `<g transform="translate(${cx} ${iconY}) scale(${scale})" fill="none" stroke="#fff" stroke-width="18"`,
    ` stroke-linecap="round" stroke-linejoin="round">${ICONS[cell.icon]}</g>`,
    `<text x="${cx}" y="${b.y + b.height * 0.72}" text-anchor="middle" font-family="${FONT_FAMILY}" font-weight="700"`,
    ` font-size="136" fill="${INK}">${escapeHtml(cell.label)}</text>`,
    `<text x="${cx}" y="${b.y + b.height * 0.87}" text-anchor="middle" font-family="${FONT_FAMILY}" font-weight="400"`,
    ` font-size="66" fill="${HINT}">${escapeHtml(cell.hint)}</text>`,
  ].join('');
}

export function richMenuSvg(layout: RichMenuLayout): string {
  const { width, height } = layout.size;
  const cells = layout.cells.map((_, i) => cellSvg(layout, i)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<rect width="${width}" height="${height}" fill="#FFFFFF"/>
${cells}
</svg>`;
}

/** The layout's picture as a PNG of exactly its size; a 256-colour palette keeps it far under LINE's 1 MB. */
export async function renderRichMenuPng(layout: RichMenuLayout): Promise<Buffer> {
  return sharp(Buffer.from(richMenuSvg(layout)), { density: 72 })
    .resize(layout.size.width, layout.size.height)
    .png({ palette: true, colours: 256, effort: 10, compressionLevel: 9 })
    .toBuffer();
}
