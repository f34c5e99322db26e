import { DELIVERY_ERRORS } from '../../texts';

/**
 * Recipient (and sender) details as ECPay's store-pickup shipments accept them
 * (specs/ecpay-logistics.md §6.1, §11 item 9). Checked before anything is signed, so a shopper
 * hears what to fix in zh-TW instead of the shipment failing days later at creation.
 *
 * - Name: 4–10 width units, where a Chinese character counts 2 and an English letter 1 (so 2–5
 *   Chinese characters or 4–10 letters); letters only: no digits, symbols or spaces. It is the
 *   name the buyer shows at the counter.
 * - Mobile: `09` + 8 digits (the store texts this number).
 * - Address (home delivery, which the owner ships by hand): present and of a sensible length.
 */

export type FieldCheck = { ok: true; value: string } | { ok: false; message: string };

export const NAME_MIN_WIDTH = 4;
export const NAME_MAX_WIDTH = 10;
export const ADDRESS_MIN_CHARS = 5;
export const ADDRESS_MAX_CHARS = 100;

const HAN = /^\p{Script=Han}$/u;
const ASCII_LETTER = /^[A-Za-z]$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\ufeff]/g;

/**
 * Width as ECPay counts it: a Chinese character 2, an ASCII letter 1. Anything else (which
 * checkContactName refuses anyway) counts 2, the way byte-counting systems see non-ASCII text.
 */
export function nameWidth(name: string): number {
  let w = 0;
  for (const ch of name) w += ASCII_LETTER.test(ch) ? 1 : 2;
  return w;
}

/**
 * A recipient's or sender's name: NFKC (full-width letters become ASCII), trimmed, then letters
 * only — Chinese characters or English letters — and 4–10 width units.
 */
export function checkContactName(raw: string): FieldCheck {
  const name = raw.normalize('NFKC').replace(CONTROL, '').trim();
  if (name === '') return { ok: false, message: DELIVERY_ERRORS.nameRequired };
  for (const ch of name) {
    if (!HAN.test(ch) && !ASCII_LETTER.test(ch)) return { ok: false, message: DELIVERY_ERRORS.nameChars };
  }
  const w = nameWidth(name);
  if (w < NAME_MIN_WIDTH || w > NAME_MAX_WIDTH) return { ok: false, message: DELIVERY_ERRORS.nameLength };
  return { ok: true, value: name };
}

/**
 * A Taiwanese mobile number, normalised to `09xxxxxxxx`: full-width digits, spaces, dashes,
 * dots and brackets are accepted, as is the +886 form (+886 912 345 678).
 */
export function checkCellPhone(raw: string): FieldCheck {
  let phone = raw.normalize('NFKC').replace(/[\s\-.()]/g, '');
  if (phone === '') return { ok: false, message: DELIVERY_ERRORS.phoneRequired };
  if (/^\+886/.test(phone)) phone = `0${phone.slice(4).replace(/^0/, '')}`;
  if (!/^09\d{8}$/.test(phone)) return { ok: false, message: DELIVERY_ERRORS.phoneFormat };
  return { ok: true, value: phone };
}

/** A delivery address: invisible characters dropped, white space folded, 5–100 characters. */
export function checkAddress(raw: string): FieldCheck {
  const address = raw.replace(CONTROL, ' ').replace(/\s+/g, ' ').trim();
  if (address === '') return { ok: false, message: DELIVERY_ERRORS.addressRequired };
  const length = [...address].length;
  if (length < ADDRESS_MIN_CHARS || length > ADDRESS_MAX_CHARS) {
    return { ok: false, message: DELIVERY_ERRORS.addressLength(ADDRESS_MIN_CHARS, ADDRESS_MAX_CHARS) };
  }
  return { ok: true, value: address };
}

export interface RecipientInput {
  name: string;
  phone: string;
  /** Needed for home delivery only. */
  address?: string;
}

export interface Recipient {
  name: string;
  /** `09xxxxxxxx`. */
  phone: string;
  address?: string;
}

export type RecipientField = 'name' | 'phone' | 'address';

export type RecipientCheck =
  | { ok: true; value: Recipient }
  | { ok: false; errors: Partial<Record<RecipientField, string>> };

/**
 * Checks every field at once, so a form can show all problems together. The address is checked
 * (and kept) only when `needAddress` is set (home delivery); store pickup needs none.
 */
export function checkRecipient(input: RecipientInput, opts: { needAddress: boolean }): RecipientCheck {
  const errors: Partial<Record<RecipientField, string>> = {};
  const name = checkContactName(input.name);
  const phone = checkCellPhone(input.phone);
  const address = opts.needAddress ? checkAddress(input.address ?? '') : null;
  if (!name.ok) errors.name = name.message;
  if (!phone.ok) errors.phone = phone.message;
  if (address && !address.ok) errors.address = address.message;
  if (!name.ok || !phone.ok || (address && !address.ok)) return { ok: false, errors };
  const value: Recipient = { name: name.value, phone: phone.value };
  if (address?.ok) value.address = address.value;
  return { ok: true, value };
}
