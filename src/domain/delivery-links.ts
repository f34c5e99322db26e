import crypto from 'node:crypto';
import type { Trx } from '../data/db';

/**
 * The unguessable links of delivery_links: the URL carries a random token, the table its sha256;
 * the store map echoes a second random token (ExtraData, ≤ 20 characters) back to our reply URL.
 * `purpose` keeps checkout's links (domain/delivery.ts) and store-change links (domain/store-change.ts) apart.
 */

export const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
/** 20 characters: fits the store map's ExtraData too. */
export const newToken = () => crypto.randomBytes(15).toString('base64url');
export const newCsrf = () => crypto.randomBytes(18).toString('base64url');

/** Days a store-change link stays usable (a closed store's parcel waits a few days for a new one). */
export const STORE_CHANGE_LINK_DAYS = 3;

/**
 * One store-change link per closure (shipment, closed store): null when this closure already has
 * one (a replayed or doubled closure notice), else the new link's token (for the URL) and expiry.
 */
export async function insertStoreChangeLink(
  trx: Trx,
  args: { orderId: number; shipmentId: number; subType: string; closedStoreId: string; now: Date },
): Promise<{ token: string; expiresAt: Date } | null> {
  const token = newToken();
  const expiresAt = new Date(args.now.getTime() + STORE_CHANGE_LINK_DAYS * 86_400_000);
  const inserted = await trx.raw(
    `INSERT INTO delivery_links (order_id, token_hash, map_token, expires_at, method, sub_type, csrf_token, purpose, shipment_id, closed_store_id)
     VALUES (?, ?, ?, ?, 'cvs', ?, ?, 'store-change', ?, ?)
     ON CONFLICT (shipment_id, closed_store_id) WHERE purpose = 'store-change' DO NOTHING
     RETURNING id`,
    [args.orderId, sha256(token), newToken(), expiresAt, args.subType, newCsrf(), args.shipmentId, args.closedStoreId],
  );
  return inserted.rows.length ? { token, expiresAt } : null;
}
