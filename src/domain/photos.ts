import crypto from 'node:crypto';
import sharp, { Metadata } from 'sharp';
import type { Db, Trx } from '../data/db';

/**
 * What a product photo is: a JPEG within LINE's image rules (Flex hero: ≤ 1024 × 1024 px; we also
 * keep it ≤ 1 MB, LINE's preview limit), in sRGB, upright (EXIF rotation applied) and without
 * metadata (no GPS position of the owner's shop leaks out). An upload is judged by its bytes, never
 * its name or declared type, and refused before decoding when it is too large, not an image, a
 * format we do not read, or would decode to more pixels than a phone camera makes (a
 * decompression bomb).
 */

/** What the owner may upload (before normalising). */
export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;
/** A 48-megapixel phone photo (8064 × 6048) fits; a small PNG that decodes to gigabytes does not. */
export const MAX_INPUT_PIXELS = 50_000_000;
export const MAX_PHOTO_EDGE = 1024;
export const MAX_PHOTO_BYTES = 1_000_000;

export type PhotoRefusal = 'empty' | 'too-large' | 'not-image' | 'unsupported' | 'heic' | 'too-many-pixels' | 'unreadable';

export interface NormalizedPhoto {
  sha256: string;
  bytes: Buffer;
  width: number;
  height: number;
}

export type PhotoResult = { kind: 'ok'; photo: NormalizedPhoto } | { kind: 'refused'; reason: PhotoRefusal };

type Sniffed = 'jpeg' | 'png' | 'webp' | 'heif' | 'gif' | 'other';

/** The container format from the first bytes (the file's magic number). */
export function sniffImage(b: Buffer): Sniffed {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 12 && b.toString('latin1', 4, 8) === 'ftyp') {
    const brand = b.toString('latin1', 8, 12);
    if (['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1', 'avif', 'avis'].includes(brand)) return 'heif';
  }
  if (b.length >= 6 && b.toString('latin1', 0, 4) === 'GIF8') return 'gif';
  return 'other';
}

/** At most this many photos are decoded at once per process: each may take a few hundred MB while it lasts. */
const MAX_CONCURRENT = 2;
let running = 0;
const waiting: Array<() => void> = [];

async function withSlot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

const open = (b: Buffer) => sharp(b, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error', sequentialRead: true });

/** Turns an upload into a product photo, or says why not. CPU work: call it outside any transaction. */
export async function normalizePhoto(input: Buffer): Promise<PhotoResult> {
  if (input.length === 0) return { kind: 'refused', reason: 'empty' };
  if (input.length > MAX_UPLOAD_BYTES) return { kind: 'refused', reason: 'too-large' };
  const kind = sniffImage(input);
  if (kind === 'other') return { kind: 'refused', reason: 'not-image' };
  if (kind === 'gif') return { kind: 'refused', reason: 'unsupported' };
  return withSlot(async () => {
    let meta: Metadata;
    try {
      // Reading the header decodes no pixels, so it may see any size: the size is judged below.
      meta = await sharp(input, { limitInputPixels: false }).metadata();
    } catch {
      return { kind: 'refused', reason: kind === 'heif' ? 'heic' : 'unreadable' } as const;
    }
    // HEIC is HEVC inside HEIF; the prebuilt libvips has no HEVC decoder (patents), only AV1 (AVIF).
    if (meta.format === 'heif' && meta.compression !== 'av1') return { kind: 'refused', reason: 'heic' } as const;
    if (!['jpeg', 'png', 'webp', 'heif'].includes(meta.format ?? '')) return { kind: 'refused', reason: 'unsupported' } as const;
    const w = meta.width ?? 0;
    const h = meta.height ?? 0;
    if (w < 1 || h < 1) return { kind: 'refused', reason: 'unreadable' } as const;
    if (w * h > MAX_INPUT_PIXELS) return { kind: 'refused', reason: 'too-many-pixels' } as const;
    try {
      return { kind: 'ok', photo: await encode(input) } as const;
    } catch (err) {
      const msg = err instanceof Error ? err.message : '';
      return { kind: 'refused', reason: /pixel limit/i.test(msg) ? 'too-many-pixels' : 'unreadable' } as const;
    }
  });
}

async function encode(input: Buffer): Promise<NormalizedPhoto> {
  let edge = MAX_PHOTO_EDGE;
  for (;;) {
    for (const quality of [85, 75, 65, 55]) {
      const { data, info } = await open(input)
        .timeout({ seconds: 30 })
        .rotate() // EXIF orientation applied; the output carries no metadata at all
        .resize({ width: edge, height: edge, fit: 'inside', withoutEnlargement: true })
        .flatten({ background: '#ffffff' })
        .toColourspace('srgb')
        .jpeg({ quality, mozjpeg: true, chromaSubsampling: '4:2:0' })
        .toBuffer({ resolveWithObject: true });
      if (data.length <= MAX_PHOTO_BYTES) {
        return { sha256: crypto.createHash('sha256').update(data).digest('hex'), bytes: data, width: info.width, height: info.height };
      }
    }
    edge = Math.floor(edge * 0.8);
  }
}

/** Stores a photo once per content (the hash is its name); returns its id. */
export async function storePhoto(trx: Trx, p: NormalizedPhoto): Promise<number> {
  await trx('product_images')
    .insert({ sha256: p.sha256, bytes: p.bytes, width: p.width, height: p.height, byte_size: p.bytes.length, content_type: 'image/jpeg' })
    .onConflict('sha256')
    .ignore();
  const row = await trx('product_images').where({ sha256: p.sha256 }).first('id');
  return Number(row.id);
}

export async function loadPhoto(db: Db, sha256: string): Promise<{ bytes: Buffer; byte_size: number } | undefined> {
  return db('product_images').where({ sha256 }).first('bytes', 'byte_size');
}

let placeholder: Promise<Buffer> | null = null;

/** A plain, light placeholder in the carousel's 20:13 shape: a simple photo glyph, no text. */
export function placeholderJpeg(): Promise<Buffer> {
  placeholder ??= sharp(
    Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="1024" height="666" viewBox="0 0 1024 666">
  <rect width="1024" height="666" fill="#F2F4F3"/>
  <g fill="none" stroke="#C5CCC8" stroke-width="14" stroke-linejoin="round">
    <rect x="407" y="243" width="210" height="160" rx="18"/>
    <circle cx="512" cy="323" r="44"/>
    <path d="M452 243 l18-30 h84 l18 30"/>
  </g>
</svg>`),
  )
    .jpeg({ quality: 85 })
    .toBuffer();
  return placeholder;
}
