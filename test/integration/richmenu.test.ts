import { spawn } from 'node:child_process';
import path from 'node:path';
import { messagingApi } from '@line/bot-sdk';
import sharp from 'sharp';
import {
  loadRichMenuImages,
  MAX_RICH_MENU_IMAGE_BYTES,
  RichMenuSetupError,
  setupRichMenus,
  type RichMenuSetupOptions,
} from '../../src/line/rich-menu-setup';
import { RICH_MENU_LAYOUTS } from '../../src/line/rich-menus';
import { startLineApiDouble, type LineApiDouble } from '../../src/sandbox/line-api-double';
import { newUserId } from '../helpers/shop';

const TOKEN = 'richmenu-test-token';
const OWNER_A = newUserId();
const OWNER_B = newUserId();
const SHOPPER = newUserId();
const ROOT = path.resolve(__dirname, '../..');

describe('npm run richmenu against the LINE API double', () => {
  let line: LineApiDouble;
  let options: RichMenuSetupOptions;
  const images = loadRichMenuImages();

  beforeAll(async () => {
    line = await startLineApiDouble({ channelAccessToken: TOKEN });
    options = {
      channelAccessToken: TOKEN,
      apiBaseUrl: line.url,
      dataApiBaseUrl: line.dataUrl,
      ownerUserIds: [OWNER_A, OWNER_B],
      images,
    };
  });
  afterAll(async () => {
    await line.close();
  });
  beforeEach(() => line.reset());

  const names = () => line.richMenus().map((m) => m.menu.name);

  test('one run makes two menus with their images, the shopper one the default, the owner one linked to every owner', async () => {
    const r = await setupRichMenus(options);

    const menus = line.richMenus();
    expect(menus.map((m) => m.menu.richMenuId)).toEqual([r.menus.shopper.richMenuId, r.menus.owner.richMenuId]);
    expect(names()).toEqual([expect.stringMatching(/^lineshop:shopper:v1 \d{4}-/), expect.stringMatching(/^lineshop:owner:v1 \d{4}-/)]);
    for (const m of menus) {
      // The double took the image: PNG, exactly the menu's size (it reads the header itself).
      expect(m.image).toMatchObject({ contentType: 'image/png', width: m.menu.size.width, height: m.menu.size.height });
      expect(m.menu.selected).toBe(true);
    }
    expect(line.defaultRichMenuId()).toBe(r.menus.shopper.richMenuId);
    expect(line.linkedRichMenuId(OWNER_A)).toBe(r.menus.owner.richMenuId);
    expect(line.linkedRichMenuId(OWNER_B)).toBe(r.menus.owner.richMenuId);
    expect(line.richMenuFor(SHOPPER)!.menu.chatBarText).toBe('購物選單');
    expect(line.richMenuFor(OWNER_A)!.menu.chatBarText).toBe('店長選單');
    expect(r).toMatchObject({ linkedOwners: [OWNER_A, OWNER_B], deleted: [], notDeleted: [], othersLeftAlone: 0 });
    // The image went to the data origin, everything else to the API origin.
    expect(line.requests.filter((q) => q.origin === 'data').map((q) => `${q.method} ${q.path}`)).toEqual([
      `POST /v2/bot/richmenu/${r.menus.shopper.richMenuId}/content`,
      `POST /v2/bot/richmenu/${r.menus.owner.richMenuId}/content`,
    ]);
  });

  test('a second run leaves exactly two menus: new ones, still default and linked; the old ones are gone', async () => {
    const first = await setupRichMenus(options);
    const second = await setupRichMenus(options);

    expect(line.richMenus().map((m) => m.menu.richMenuId)).toEqual([second.menus.shopper.richMenuId, second.menus.owner.richMenuId]);
    expect(second.menus.shopper.richMenuId).not.toBe(first.menus.shopper.richMenuId);
    expect(second.deleted.map((m) => m.richMenuId).sort()).toEqual([first.menus.shopper.richMenuId, first.menus.owner.richMenuId].sort());
    expect(line.richMenu(first.menus.owner.richMenuId)).toBeNull();
    expect(line.defaultRichMenuId()).toBe(second.menus.shopper.richMenuId);
    expect([line.linkedRichMenuId(OWNER_A), line.linkedRichMenuId(OWNER_B)]).toEqual([second.menus.owner.richMenuId, second.menus.owner.richMenuId]);
  });

  test('menus it did not make are never deleted', async () => {
    const client = new messagingApi.MessagingApiClient({ channelAccessToken: TOKEN, baseURL: line.url });
    const { richMenuId: foreign } = await client.createRichMenu({
      size: { width: 2500, height: 843 },
      selected: false,
      name: 'summer sale (made in OA Manager)',
      chatBarText: '夏季特賣',
      areas: [{ bounds: { x: 0, y: 0, width: 2500, height: 843 }, action: { type: 'uri', uri: 'https://example.com/sale' } }],
    });
    await setupRichMenus(options);
    const r = await setupRichMenus(options);

    expect(r.othersLeftAlone).toBe(1);
    expect(line.richMenus().map((m) => m.menu.richMenuId)).toEqual([foreign, r.menus.shopper.richMenuId, r.menus.owner.richMenuId]);
  });

  test('an owner dropped from SHOP_OWNER_LINE_USER_IDS gets the shopper menu back on the next run', async () => {
    await setupRichMenus(options);
    const r = await setupRichMenus({ ...options, ownerUserIds: [OWNER_A] });
    expect(line.richMenuFor(OWNER_A)!.menu.richMenuId).toBe(r.menus.owner.richMenuId);
    expect(line.richMenuFor(OWNER_B)!.menu.richMenuId).toBe(r.menus.shopper.richMenuId);
  });

  test('a run that fails before anything shows its menus deletes what it made and leaves the channel as it was', async () => {
    const first = await setupRichMenus(options);
    const before = line.richMenus().map((m) => m.menu.richMenuId);
    line.injectFailures(/^\/v2\/bot\/richmenu\/[^/]+\/content$/, [{ status: 500 }]);

    await expect(setupRichMenus(options)).rejects.toThrow(/upload the shopper menu's image: LINE answered 500/);
    expect(line.richMenus().map((m) => m.menu.richMenuId)).toEqual(before);
    expect(line.defaultRichMenuId()).toBe(first.menus.shopper.richMenuId);
    expect(line.linkedRichMenuId(OWNER_B)).toBe(first.menus.owner.richMenuId);
  });

  test('a run that fails while linking leaves only complete menus on screen, and the next run finishes the job', async () => {
    const first = await setupRichMenus(options);
    line.injectFailures(new RegExp(`^/v2/bot/user/${OWNER_B}/richmenu/`), [{ status: 500 }]);

    await expect(setupRichMenus(options)).rejects.toThrow(new RegExp(`link the owner menu to ${OWNER_B}: LINE answered 500`));
    // Nothing deleted yet: every menu anyone sees has its image.
    expect(line.richMenus()).toHaveLength(4);
    expect(line.linkedRichMenuId(OWNER_B)).toBe(first.menus.owner.richMenuId);
    for (const user of [SHOPPER, OWNER_A, OWNER_B]) expect(line.richMenuFor(user)!.image).not.toBeNull();

    const third = await setupRichMenus(options);
    expect(third.deleted).toHaveLength(4);
    expect(line.richMenus().map((m) => m.menu.richMenuId)).toEqual([third.menus.shopper.richMenuId, third.menus.owner.richMenuId]);
    expect(line.linkedRichMenuId(OWNER_B)).toBe(third.menus.owner.richMenuId);
  });

  test('a malformed owner id or an image LINE would refuse stops the run before any call to LINE', async () => {
    await expect(setupRichMenus({ ...options, ownerUserIds: [OWNER_A, 'shop-owner'] })).rejects.toThrow(
      /SHOP_OWNER_LINE_USER_IDS: shop-owner is not a LINE userId/,
    );
    const small = await sharp(images.owner).resize(2500, 843).png().toBuffer();
    const err = await setupRichMenus({ ...options, images: { ...images, owner: small } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RichMenuSetupError);
    expect((err as Error).message).toBe('the owner image is 2500×843; its menu is 2500×1686');
    expect(line.requests).toEqual([]);
  });

  test('the committed images are within LINE limits: PNG, the menu size, at most 1 MB', async () => {
    for (const role of ['shopper', 'owner'] as const) {
      const meta = await sharp(images[role]).metadata();
      expect({ format: meta.format, width: meta.width, height: meta.height }).toEqual({ format: 'png', ...RICH_MENU_LAYOUTS[role].size });
      expect(images[role].length).toBeLessThanOrEqual(MAX_RICH_MENU_IMAGE_BYTES);
    }
  });
});

describe('npm run richmenu as a process (dist/, as the README runs it)', () => {
  let line: LineApiDouble;
  beforeAll(async () => {
    line = await startLineApiDouble({ channelAccessToken: TOKEN });
  });
  afterAll(async () => {
    await line.close();
  });

  /** Async spawn: the double answers from this process, so the test must not block its event loop. */
  function run(env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
    return new Promise((resolve) => {
      const p = spawn(process.execPath, [path.join(ROOT, 'dist/src/cli/richmenu.js')], { env: { PATH: process.env.PATH ?? '', ...env } });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('close', (code) => resolve({ code, out: out.trim(), err: err.trim() }));
    });
  }

  test('prints a summary; run twice, it replaces its own menus; without a token it names the missing setting', async () => {
    const env = {
      LINE_CHANNEL_ACCESS_TOKEN: TOKEN,
      LINE_API_BASE_URL: line.url,
      LINE_DATA_API_BASE_URL: line.dataUrl,
      SHOP_OWNER_LINE_USER_IDS: ` ${OWNER_A} ,${OWNER_B}`,
    };
    const first = await run(env);
    expect(first).toMatchObject({ code: 0, err: '' });
    expect(first.out).toMatch(/^shopper menu richmenu-[0-9a-f]{32} \(lineshop:shopper:v1 .+\) is everyone's default$/m);
    expect(first.out).toContain(`linked to 2 owner(s): ${OWNER_A}, ${OWNER_B}`);
    expect(first.out).toContain('deleted 0 menu(s) of earlier runs');

    const second = await run(env);
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/deleted 2 menu\(s\) of earlier runs: richmenu-/);
    expect(line.richMenus()).toHaveLength(2);

    const missing = await run({ LINE_API_BASE_URL: line.url });
    expect(missing).toMatchObject({ code: 1, out: '', err: 'config error: LINE_CHANNEL_ACCESS_TOKEN is required' });
  });
});
