/**
 * ECPay logistics sub-types for convenience-store pickup (specs/ecpay-logistics.md §1, §5.2).
 * The logistics account decides the family: a C2C account (店到店, the shop drops each parcel at
 * a store) allows only the `…C2C` values, a B2C account (大宗寄倉, bulk to the chain's warehouse)
 * only the others. Kept free of other imports: config.ts validates settings with it.
 */

export const C2C_SUB_TYPES = ['UNIMARTC2C', 'FAMIC2C', 'HILIFEC2C', 'OKMARTC2C'] as const;
export const B2C_SUB_TYPES = ['UNIMART', 'UNIMARTFREEZE', 'FAMI', 'HILIFE'] as const;
export const CVS_SUB_TYPES = [...C2C_SUB_TYPES, ...B2C_SUB_TYPES] as const;

export type C2cSubType = (typeof C2C_SUB_TYPES)[number];
export type B2cSubType = (typeof B2C_SUB_TYPES)[number];
export type CvsSubType = (typeof CVS_SUB_TYPES)[number];

/** The store chain behind a sub-type. */
export type CvsChain = 'UNIMART' | 'FAMI' | 'HILIFE' | 'OKMART';

export const CHAIN_OF: Readonly<Record<CvsSubType, CvsChain>> = {
  UNIMARTC2C: 'UNIMART',
  FAMIC2C: 'FAMI',
  HILIFEC2C: 'HILIFE',
  OKMARTC2C: 'OKMART',
  UNIMART: 'UNIMART',
  UNIMARTFREEZE: 'UNIMART',
  FAMI: 'FAMI',
  HILIFE: 'HILIFE',
};

export function isCvsSubType(s: string): s is CvsSubType {
  return (CVS_SUB_TYPES as readonly string[]).includes(s);
}

export function isC2cSubType(s: string): s is C2cSubType {
  return (C2C_SUB_TYPES as readonly string[]).includes(s);
}

/** The default offer: every C2C chain (the spec's decision, §1). */
export const DEFAULT_SUB_TYPES: readonly CvsSubType[] = C2C_SUB_TYPES;

/**
 * Parses a comma list of sub-types. Refuses unknown names, duplicates and a mix of C2C and B2C
 * (one account is one family; the other family's map page shows "找不到加密金鑰", §2).
 */
export function parseSubTypeList(s: string): { ok: true; value: CvsSubType[] } | { ok: false; reason: string } {
  const names = s
    .split(',')
    .map((n) => n.trim().toUpperCase())
    .filter(Boolean);
  if (names.length === 0) return { ok: false, reason: 'no sub-type given' };
  const unknown = names.filter((n) => !isCvsSubType(n));
  if (unknown.length > 0) return { ok: false, reason: `unknown sub-type ${unknown.join(', ')}` };
  if (new Set(names).size !== names.length) return { ok: false, reason: 'a sub-type is listed twice' };
  const c2c = names.filter(isC2cSubType).length;
  if (c2c !== 0 && c2c !== names.length) return { ok: false, reason: 'C2C and B2C sub-types cannot be mixed (one account is one kind)' };
  return { ok: true, value: names as CvsSubType[] };
}
