import { randomBytes } from 'node:crypto';
import { HTTPFetchError, messagingApi } from '@line/bot-sdk';
import sharp from 'sharp';
import { httpError, parseBody } from '../helpers/line-errors';
import { startLineApiDouble, type LineApiDouble } from '../../src/sandbox/line-api-double';
import { readImageHeader } from '../../src/sandbox/line-rich-menu-double';

const TOKEN = 'test-channel-access-token';
const ALICE = `U${'a1'.repeat(16)}`;
const BOB = `U${'b2'.repeat(16)}`;
const RICH_MENU_ID_RE = /^richmenu-[0-9a-f]{32}$/;

const properties = (err: HTTPFetchError): string[] => (parseBody(err).details ?? []).map((d) => d.property);

function menu(overrides: Partial<messagingApi.RichMenuRequest> = {}): messagingApi.RichMenuRequest {
  return {
    size: { width: 2500, height: 843 },
    selected: true,
    name: 'test menu',
    chatBarText: '選單',
    areas: [
      { bounds: { x: 0, y: 0, width: 1250, height: 843 }, action: { type: 'message', label: '商品', text: '商品' } },
      { bounds: { x: 1250, y: 0, width: 1250, height: 843 }, action: { type: 'postback', data: 'action=cart', displayText: '購物車' } },
    ],
    ...overrides,
  };
}

const area = (action: messagingApi.Action, bounds = { x: 0, y: 0, width: 100, height: 100 }): messagingApi.RichMenuArea => ({
  bounds,
  action,
});

const solid = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: { r: 6, g: 199, b: 85 } } });
const png = async (width: number, height: number) => solid(width, height).png().toBuffer();
const blob = (buf: Buffer, type = 'image/png') => new Blob([new Uint8Array(buf)], { type });

/** A real PNG of the given pixel size whose file size is about `bytes`: a noise patch that does not compress. */
async function heavyPng(width: number, height: number, bytes: number): Promise<Buffer> {
  const rows = Math.min(height, Math.ceil(bytes / (width * 3)));
  const noise = await sharp(randomBytes(width * rows * 3), { raw: { width, height: rows, channels: 3 } }).png().toBuffer();
  return solid(width, height).composite([{ input: noise, left: 0, top: 0 }]).png().toBuffer();
}

describe('LINE API double: rich menus (driven through @line/bot-sdk)', () => {
  let double: LineApiDouble;
  let client: messagingApi.MessagingApiClient;
  let blobClient: messagingApi.MessagingApiBlobClient;

  beforeAll(async () => {
    double = await startLineApiDouble({ channelAccessToken: TOKEN });
    client = new messagingApi.MessagingApiClient({ channelAccessToken: TOKEN, baseURL: double.url });
    blobClient = new messagingApi.MessagingApiBlobClient({ channelAccessToken: TOKEN, baseURL: double.dataUrl });
  });

  afterAll(async () => {
    await double.close();
  });

  beforeEach(() => {
    double.reset();
  });

  async function createWithImage(req = menu()): Promise<string> {
    const { richMenuId } = await client.createRichMenu(req);
    await blobClient.setRichMenuImage(richMenuId, blob(await png(req.size!.width!, req.size!.height!)));
    return richMenuId;
  }

  test('the data origin is a second origin-only URL', () => {
    expect(double.dataUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(double.dataUrl).not.toBe(double.url);
  });

  describe('create, upload, default and links', () => {
    test('a valid menu is created, takes its image once, becomes the default and can be linked', async () => {
      const { richMenuId } = await client.createRichMenu(menu());
      expect(richMenuId).toMatch(RICH_MENU_ID_RE);
      expect(await client.getRichMenu(richMenuId)).toEqual({ richMenuId, ...menu() });

      const image = await png(2500, 843);
      const uploaded = await blobClient.setRichMenuImageWithHttpInfo(richMenuId, blob(image));
      expect(uploaded.httpResponse.status).toBe(200);
      expect(uploaded.body).toEqual({});

      await client.setDefaultRichMenu(richMenuId);
      expect(await client.getDefaultRichMenuId()).toEqual({ richMenuId });
      await client.linkRichMenuIdToUser(ALICE, richMenuId);
      expect(await client.getRichMenuIdOfUser(ALICE)).toEqual({ richMenuId });

      const stored = double.richMenu(richMenuId)!;
      expect(stored.image).toEqual({ contentType: 'image/png', width: 2500, height: 843, bytes: image });
      expect(double.defaultRichMenuId()).toBe(richMenuId);
      expect(double.linkedRichMenuId(ALICE)).toBe(richMenuId);
      expect(double.requests.find((r) => r.path.endsWith('/content'))).toMatchObject({
        origin: 'data',
        body: `<${image.length} bytes of image/png>`,
      });

      const downloaded = await blobClient.getRichMenuImageWithHttpInfo(richMenuId);
      expect(downloaded.httpResponse.headers.get('content-type')).toBe('image/png');
      const chunks: Buffer[] = [];
      for await (const c of downloaded.body) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(image)).toBe(true);
    });

    test('a JPEG of the menu size is accepted and its size read from the frame header', async () => {
      const { richMenuId } = await client.createRichMenu(menu({ size: { width: 1200, height: 810 }, areas: [area({ type: 'message', text: '說明' })] }));
      const jpeg = await solid(1200, 810).jpeg({ progressive: true }).toBuffer();
      expect(readImageHeader(jpeg)).toEqual({ format: 'jpeg', width: 1200, height: 810 });
      await blobClient.setRichMenuImage(richMenuId, blob(jpeg, 'image/jpeg'));
      expect(double.richMenu(richMenuId)!.image).toMatchObject({ contentType: 'image/jpeg', width: 1200, height: 810 });
    });

    test('list answers every menu; the per-user link wins over the default; unlinking falls back to the default', async () => {
      const shopper = await createWithImage(menu({ name: 'shopper' }));
      const owner = await createWithImage(menu({ name: 'owner' }));
      await client.setDefaultRichMenu(shopper);
      await client.linkRichMenuIdToUser(ALICE, owner);

      expect((await client.getRichMenuList()).richmenus.map((m) => m.name)).toEqual(['shopper', 'owner']);
      expect(double.richMenuFor(ALICE)!.menu.name).toBe('owner');
      expect(double.richMenuFor(BOB)!.menu.name).toBe('shopper');
      const none = await httpError(client.getRichMenuIdOfUser(BOB));
      expect(none.status).toBe(404);
      expect(parseBody(none)).toEqual({ message: 'the user has no richmenu', details: [] });

      await client.unlinkRichMenuIdFromUser(ALICE);
      expect(double.richMenuFor(ALICE)!.menu.name).toBe('shopper');
      await client.cancelDefaultRichMenu();
      expect(double.richMenuFor(ALICE)).toBeNull();
      const noDefault = await httpError(client.getDefaultRichMenuId());
      expect(noDefault.status).toBe(404);
      expect(parseBody(noDefault).message).toBe('no default richmenu');
    });

    test('deleting a menu removes it, its default role and its links; a second delete is 404', async () => {
      const id = await createWithImage();
      await client.setDefaultRichMenu(id);
      await client.linkRichMenuIdToUser(ALICE, id);

      await client.deleteRichMenu(id);
      expect((await client.getRichMenuList()).richmenus).toEqual([]);
      expect(double.defaultRichMenuId()).toBeNull();
      expect(double.linkedRichMenuId(ALICE)).toBeNull();
      for (const p of [client.getRichMenu(id), client.deleteRichMenu(id), client.setDefaultRichMenu(id)]) {
        const err = await httpError(p);
        expect(err.status).toBe(404);
        expect(parseBody(err)).toEqual({ message: 'Not found' });
      }
    });

    test('bulk link answers 202 and links every user; bulk unlink removes them', async () => {
      const id = await createWithImage();
      const res = await client.linkRichMenuIdToUsersWithHttpInfo({ richMenuId: id, userIds: [ALICE, BOB] });
      expect(res.httpResponse.status).toBe(202);
      expect([double.linkedRichMenuId(ALICE), double.linkedRichMenuId(BOB)]).toEqual([id, id]);

      const bad = await httpError(client.linkRichMenuIdToUsers({ richMenuId: id, userIds: [ALICE, 'Uzzz'] }));
      expect(bad.status).toBe(400);
      expect(parseBody(bad).message).toBe("The property, 'userIds[1]', in the request body is invalid (line: -, column: -)");
      const unknown = await httpError(client.linkRichMenuIdToUsers({ richMenuId: `richmenu-${'0'.repeat(32)}`, userIds: [ALICE] }));
      expect(unknown.status).toBe(404);
      expect(parseBody(unknown).message).toBe('richmenu not found');

      expect((await client.unlinkRichMenuIdFromUsersWithHttpInfo({ userIds: [ALICE, BOB] })).httpResponse.status).toBe(202);
      expect([double.linkedRichMenuId(ALICE), double.linkedRichMenuId(BOB)]).toEqual([null, null]);
    });
  });

  describe('rich menu object validation', () => {
    async function rejected(req: messagingApi.RichMenuRequest): Promise<HTTPFetchError> {
      const err = await httpError(client.createRichMenu(req));
      expect(err.status).toBe(400);
      expect(parseBody(err).message).toMatch(/^The request body has \d+ error\(s\)$/);
      // The validate endpoint answers the same, and nothing was created by either.
      const v = await httpError(client.validateRichMenuObject(req));
      expect(parseBody(v)).toEqual(parseBody(err));
      expect(double.richMenus()).toEqual([]);
      return err;
    }

    test('the validate endpoint answers 200 {} for a valid object and creates nothing', async () => {
      const res = await client.validateRichMenuObjectWithHttpInfo(menu());
      expect(res.httpResponse.status).toBe(200);
      expect(double.richMenus()).toEqual([]);
    });

    test('sizes outside 800–2500 wide, under 250 high or narrower than 1.45:1 are refused', async () => {
      expect(properties(await rejected(menu({ size: { width: 799, height: 250 } })))).toContain('size.width');
      expect(properties(await rejected(menu({ size: { width: 2501, height: 1686 } })))).toContain('size.width');
      expect(properties(await rejected(menu({ size: { width: 800, height: 249 } })))).toEqual(['size.height']);
      expect(properties(await rejected(menu({ size: { width: 1200, height: 1000 } })))).toEqual(['size']);
      // 2500×1686 (full) and 2500×843 (compact) are the documented ones.
      await expect(client.validateRichMenuObject(menu({ size: { width: 2500, height: 1686 } }))).resolves.toEqual({});
    });

    test('an area that leaves the image, or has negative or empty bounds, is refused', async () => {
      const outside = await rejected(menu({ areas: [area({ type: 'message', text: 'x' }, { x: 1300, y: 0, width: 1250, height: 843 })] }));
      expect(parseBody(outside).details).toEqual([{ message: 'must be within the rich menu (2500x843)', property: 'areas[0].bounds' }]);
      const below = await rejected(menu({ areas: [area({ type: 'message', text: 'x' }, { x: 0, y: 1, width: 2500, height: 843 })] }));
      expect(properties(below)).toEqual(['areas[0].bounds']);
      const negative = await rejected(menu({ areas: [area({ type: 'message', text: 'x' }, { x: -1, y: 0, width: 10, height: 0 })] }));
      expect(properties(negative)).toEqual(['areas[0].bounds.x', 'areas[0].bounds.height']);
    });

    test('21 areas, or none, are refused', async () => {
      const cell = (i: number) => area({ type: 'message', text: `${i}` }, { x: i * 100, y: 0, width: 100, height: 100 });
      expect(properties(await rejected(menu({ areas: Array.from({ length: 21 }, (_, i) => cell(i)) })))).toEqual(['areas']);
      expect(properties(await rejected(menu({ areas: [] })))).toEqual(['areas']);
      await expect(client.validateRichMenuObject(menu({ areas: Array.from({ length: 20 }, (_, i) => cell(i)) }))).resolves.toEqual({});
    });

    test('actions break their type rules: long postback data or message text, bad URI scheme, long label, quick-reply-only type', async () => {
      const err = await rejected(
        menu({
          areas: [
            area({ type: 'postback', data: 'x'.repeat(301) }),
            area({ type: 'message', text: 'x'.repeat(301) }),
            area({ type: 'uri', uri: 'ftp://example.com/menu' }),
            area({ type: 'message', label: '標籤'.repeat(10) + '多', text: 'ok' }),
            area({ type: 'camera', label: 'camera' }),
            area({ type: 'postback', data: 'a', displayText: 'b', text: 'c' }),
          ],
        }),
      );
      expect(properties(err)).toEqual([
        'areas[0].action.data',
        'areas[1].action.text',
        'areas[2].action.uri',
        'areas[3].action.label',
        'areas[4].action.type',
        'areas[5].action.text',
      ]);
      expect(parseBody(err).details![2]).toEqual({ message: 'invalid uri', property: 'areas[2].action.uri' });
      // Exactly at the limits is fine, and tel:/line: URIs are allowed.
      await expect(
        client.validateRichMenuObject(
          menu({
            areas: [
              area({ type: 'postback', data: 'x'.repeat(300) }),
              area({ type: 'message', label: 'x'.repeat(20), text: 'x'.repeat(300) }),
              area({ type: 'uri', uri: 'tel:0223456789' }),
              area({ type: 'uri', uri: 'line://nv/chat' }),
            ],
          }),
        ),
      ).resolves.toEqual({});
    });

    test('chatBarText over 14, name over 300 and missing properties are refused', async () => {
      expect(properties(await rejected(menu({ chatBarText: '點'.repeat(15) })))).toEqual(['chatBarText']);
      expect(properties(await rejected(menu({ name: 'n'.repeat(301) })))).toEqual(['name']);
      const { name: _n, selected: _s, ...partial } = menu();
      const missing = await rejected(partial);
      expect(parseBody(missing).details).toEqual([
        { message: 'must be specified', property: 'selected' },
        { message: 'must be specified', property: 'name' },
      ]);
    });
  });

  describe('image upload rules', () => {
    let id: string;
    beforeEach(async () => {
      ({ richMenuId: id } = await client.createRichMenu(menu()));
    });

    test('an image whose pixel size differs from the menu size is refused', async () => {
      const err = await httpError(blobClient.setRichMenuImage(id, blob(await png(2500, 1686))));
      expect(err.status).toBe(400);
      expect(parseBody(err)).toEqual({ message: 'The image size is not allowed for richmenu' });
      expect(double.richMenu(id)!.image).toBeNull();
    });

    test('an image over 1 MB is refused with 400; over 2 MB the request itself is too large (413)', async () => {
      const big = await heavyPng(2500, 843, 1_300_000);
      expect(big.length).toBeGreaterThan(1024 * 1024);
      expect(big.length).toBeLessThan(2 * 1024 * 1024);
      const err = await httpError(blobClient.setRichMenuImage(id, blob(big)));
      expect(err.status).toBe(400);
      expect(parseBody(err).message).toBe('The image size is not allowed for richmenu');

      const huge = await heavyPng(2500, 843, 2_200_000);
      expect((await httpError(blobClient.setRichMenuImage(id, blob(huge)))).status).toBe(413);
      expect(double.richMenu(id)!.image).toBeNull();
    });

    test('a content type other than image/png or image/jpeg is 415; bytes that are not the named format are 400', async () => {
      const image = await png(2500, 843);
      const gif = await httpError(blobClient.setRichMenuImage(id, blob(image, 'image/gif')));
      expect(gif.status).toBe(415);
      expect(parseBody(gif).message).toBe('The content type, image/gif, is not supported');
      const mislabelled = await httpError(blobClient.setRichMenuImage(id, blob(image, 'image/jpeg')));
      expect(mislabelled.status).toBe(400);
      const garbage = await httpError(blobClient.setRichMenuImage(id, blob(randomBytes(5000))));
      expect(garbage.status).toBe(400);
      expect(double.richMenu(id)!.image).toBeNull();
    });

    test('an image can be uploaded once; the upload goes to the data origin only; an unknown menu is 404', async () => {
      const image = await png(2500, 843);
      await blobClient.setRichMenuImage(id, blob(image));
      const again = await httpError(blobClient.setRichMenuImage(id, blob(image)));
      expect(again.status).toBe(400);
      expect(parseBody(again)).toEqual({ message: 'An image has already been uploaded to the richmenu' });

      const wrongOrigin = new messagingApi.MessagingApiBlobClient({ channelAccessToken: TOKEN, baseURL: double.url });
      const { richMenuId: other } = await client.createRichMenu(menu());
      expect((await httpError(wrongOrigin.setRichMenuImage(other, blob(image)))).status).toBe(404);
      expect((await httpError(blobClient.setRichMenuImage(`richmenu-${'0'.repeat(32)}`, blob(image)))).status).toBe(404);
    });

    test('a menu without an image can be neither the default nor linked', async () => {
      for (const p of [
        client.setDefaultRichMenu(id),
        client.linkRichMenuIdToUser(ALICE, id),
        client.linkRichMenuIdToUsers({ richMenuId: id, userIds: [ALICE] }),
      ]) {
        const err = await httpError(p);
        expect(err.status).toBe(400);
        expect(parseBody(err)).toEqual({ message: 'must upload richmenu image before applying it to user', details: [] });
      }
      expect(double.defaultRichMenuId()).toBeNull();
      expect(double.linkedRichMenuId(ALICE)).toBeNull();
    });

    test('linking to a malformed user id is 400 and leaves the links alone', async () => {
      const ok = await createWithImage();
      const err = await httpError(client.linkRichMenuIdToUser('alice', ok));
      expect(err.status).toBe(400);
      expect(parseBody(err)).toEqual({ message: "The value for the 'userId' parameter is invalid" });
      expect(double.richMenus().length).toBe(2);
    });
  });

  describe('inspection', () => {
    test('GET /__double/richmenus shows menus, image sizes, the default and links without auth', async () => {
      const id = await createWithImage();
      await client.setDefaultRichMenu(id);
      await client.linkRichMenuIdToUser(BOB, id);
      const res = await fetch(`${double.url}/__double/richmenus`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { defaultRichMenuId: string; links: Record<string, string>; richmenus: unknown[] };
      expect(body.defaultRichMenuId).toBe(id);
      expect(body.links).toEqual({ [BOB]: id });
      expect(body.richmenus).toEqual([
        expect.objectContaining({ richMenuId: id, image: expect.objectContaining({ contentType: 'image/png', width: 2500, height: 843 }) }),
      ]);
    });

    test('reset forgets menus, the default and links', async () => {
      const id = await createWithImage();
      await client.setDefaultRichMenu(id);
      double.reset();
      expect(double.richMenus()).toEqual([]);
      expect(double.defaultRichMenuId()).toBeNull();
      expect((await httpError(client.getRichMenu(id))).status).toBe(404);
    });
  });
});
