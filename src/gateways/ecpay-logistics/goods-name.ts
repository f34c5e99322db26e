import { DELIVERY_GOODS } from '../../texts';

/**
 * ECPay GoodsName (specs/ecpay-logistics.md §6.1): at most 50 characters, required for
 * 7-ELEVEN, Hi-Life and OK C2C, and none of these 18 characters: ^ ' ` ! @ # % & * + \ " < > | _ [ ]
 * (one of them makes Express/Create fail). Control characters go too, and an empty result
 * becomes ECPay's own plugin's fallback 「網路商品一批」.
 */

export const GOODS_NAME_MAX = 50;

const FORBIDDEN = /[\^'`!@#%&*+\\"<>|_[\]]/g;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\ufeff]/g;

/** Cuts to `max` characters (code points, so no half surrogate pair). */
function cut(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : chars.slice(0, max).join('').trim();
}

/** One product name made safe for GoodsName; '' when nothing printable is left. */
export function sanitizeGoodsName(name: string): string {
  return cut(name.replace(CONTROL, ' ').replace(FORBIDDEN, ' ').replace(/\s+/g, ' ').trim(), GOODS_NAME_MAX);
}

/**
 * GoodsName for a parcel: the product's name, or "<first>等<n>件" for several lines, within 50
 * characters; the fallback when no name has anything printable.
 */
export function goodsNameFor(productNames: readonly string[]): string {
  const clean = productNames.map(sanitizeGoodsName).filter((n) => n !== '');
  if (clean.length === 0) return DELIVERY_GOODS.fallback;
  if (productNames.length === 1) return clean[0]!;
  const suffix = DELIVERY_GOODS.several('', productNames.length);
  return DELIVERY_GOODS.several(cut(clean[0]!, GOODS_NAME_MAX - [...suffix].length), productNames.length);
}

/** True when ECPay would accept this GoodsName as it is. */
export function isValidGoodsName(name: string): boolean {
  return name !== '' && name === sanitizeGoodsName(name);
}
