import type { MemberTier, MembersConfig, Ratio } from '../../config';

/**
 * The member rules as pure functions of integers (unit-tested at their boundaries): points earned,
 * tiers, tier discounts, how many points an order may take. Rates are exact fractions (config.ts
 * Ratio), so NT$ × rate never meets binary rounding (0.29 × 100 is 28.999… in floating point).
 */

const big = BigInt;

/** ⌊n × r⌋ for n ≥ 0. */
export function mulFloor(n: number, r: Ratio): number {
  return Number((big(n) * big(r.num)) / big(r.den));
}

/** ⌈n ÷ r⌉ for n ≥ 0, r > 0. */
export function divCeil(n: number, r: Ratio): number {
  return Number((big(n) * big(r.den) + big(r.num) - 1n) / big(r.num));
}

/** Whole points for NT$ paid (POINTS_PER_TWD, rounded down). */
export function pointsFor(paidTwd: number, cfg: Pick<MembersConfig, 'pointsPerTwd'>): number {
  return paidTwd > 0 ? mulFloor(paidTwd, cfg.pointsPerTwd) : 0;
}

export interface TierStanding {
  tier: MemberTier;
  /** The next tier up and the points still needed for it; null at the top. */
  next: { tier: MemberTier; needed: number } | null;
}

/** The tier that points earned in the last 12 months reach (tiers ascending, the first at 0). */
export function tierFor(earned: number, tiers: readonly MemberTier[]): TierStanding {
  let i = 0;
  while (i + 1 < tiers.length && earned >= tiers[i + 1]!.minPoints) i++;
  const next = tiers[i + 1];
  return { tier: tiers[i]!, next: next ? { tier: next, needed: next.minPoints - Math.max(0, earned) } : null };
}

/** The tier's discount on goods worth `amount` (integer TWD, rounded down: never more than the percentage). */
export function tierDiscount(amount: number, tier: MemberTier): number {
  return amount > 0 ? Math.floor((amount * tier.discountPercent) / 100) : 0;
}

/**
 * What points can take off an order whose total (before points) is `total`: at most
 * POINTS_MAX_SHARE of it, at most what the points are worth, and never all of it (an order keeps a
 * positive total). The points needed are rounded up, the NT$ discount down, so a point is never
 * worth more than POINTS_TWD_PER_POINT. Null when nothing can be taken.
 */
export function redeemOffer(total: number, pointsBalance: number, cfg: Pick<MembersConfig, 'twdPerPoint' | 'maxPointsShare'>): { points: number; amount: number } | null {
  const byShare = Math.min(mulFloor(total, cfg.maxPointsShare), total - 1);
  const byPoints = mulFloor(pointsBalance, cfg.twdPerPoint);
  const amount = Math.min(byShare, byPoints);
  if (amount < 1) return null;
  return { points: divCeil(amount, cfg.twdPerPoint), amount };
}

/** Proportional share, cumulative: ⌊whole × part ÷ of⌋ (so partial refunds add up to the whole one at the end). */
export function proportion(whole: number, part: number, of: number): number {
  if (of <= 0 || part <= 0) return 0;
  return Math.floor((whole * Math.min(part, of)) / of);
}
