import { loadRichMenuSettingsOrExit } from '../config';
import { formatRichMenuSummary, loadRichMenuImages, setupRichMenus } from '../line/rich-menu-setup';

/** `npm run richmenu`: create, upload and link the shopper and owner rich menus (idempotent). */
async function main(): Promise<void> {
  const s = loadRichMenuSettingsOrExit();
  const result = await setupRichMenus({
    channelAccessToken: s.channelAccessToken,
    apiBaseUrl: s.apiBaseUrl,
    dataApiBaseUrl: s.dataApiBaseUrl,
    ownerUserIds: s.ownerLineUserIds,
    images: loadRichMenuImages(),
  });
  console.log(formatRichMenuSummary(result));
  // The new menus are up; old ones that could not be deleted are reported above, and a failing
  // exit status makes sure whoever ran this sees it.
  if (result.notDeleted.length > 0) process.exitCode = 1;
}

main().catch((err) => {
  console.error(`richmenu failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
