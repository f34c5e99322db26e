/**
 * Where product photos are published, under PUBLIC_BASE_URL (served by web/media-routes.ts, used
 * by the chat's carousel and the back office). Kept apart from photos.ts so that rendering a URL
 * never loads the image library.
 */

/** Where a stored photo is published (under PUBLIC_BASE_URL); the hash makes the URL immutable. */
export const photoPath = (sha256: string) => `/media/products/${sha256}.jpg`;
/** A product without a photo shows this one (bump the version if the design changes). */
export const PLACEHOLDER_PATH = '/media/placeholder/v1.jpg';

/** The photo URL of a product: its uploaded photo, else a photo hosted elsewhere (demo), else the placeholder. */
export function productImageUrl(publicBaseUrl: string, p: { image_hash?: string | null; image_url?: string | null }): string {
  if (p.image_hash) return publicBaseUrl + photoPath(p.image_hash);
  if (p.image_url) return p.image_url;
  return publicBaseUrl + PLACEHOLDER_PATH;
}
