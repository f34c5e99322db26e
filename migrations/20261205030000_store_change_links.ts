import type { Knex } from 'knex';

/**
 * A new pickup store after the old one closed, chosen by the shopper (issue 13, store change):
 *
 * - delivery_links.purpose: 'checkout' (the delivery details page at checkout) or 'store-change'
 *   (the link pushed to the shopper when the parcel's pickup store closed). A link of one purpose
 *   is never accepted by the other's pages or map reply.
 * - delivery_links.shipment_id / closed_store_id: the parcel and the store that closed; one link per
 *   closure (unique), so a replayed or doubled closure notice pushes the shopper once.
 * - delivery_links.used_at: the new store was recorded through this link (a replayed map reply is done).
 * - shipments.store_closed_at / store_fixed_at: when the pickup store last closed and when a new one
 *   was accepted by ECPay (UpdateStoreInfo); a closure is open while store_fixed_at is older.
 * - shipments.store_change_claimed_at: one UpdateStoreInfo call at a time per parcel (owner form and
 *   shopper map reply share one use case).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('delivery_links', (t) => {
    t.text('purpose').notNullable().defaultTo('checkout');
    t.bigInteger('shipment_id').references('shipments.id');
    t.text('closed_store_id');
    t.timestamp('used_at', { useTz: true });
  });
  await knex.raw("ALTER TABLE delivery_links ADD CONSTRAINT delivery_links_purpose_valid CHECK (purpose IN ('checkout','store-change'))");
  await knex.raw(
    "ALTER TABLE delivery_links ADD CONSTRAINT delivery_links_store_change_shape CHECK (purpose <> 'store-change' OR (shipment_id IS NOT NULL AND closed_store_id IS NOT NULL))",
  );
  await knex.raw("CREATE UNIQUE INDEX delivery_links_one_per_closure ON delivery_links (shipment_id, closed_store_id) WHERE purpose = 'store-change'");
  await knex.schema.alterTable('shipments', (t) => {
    t.timestamp('store_closed_at', { useTz: true });
    t.timestamp('store_fixed_at', { useTz: true });
    t.timestamp('store_change_claimed_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('shipments', (t) => {
    t.dropColumn('store_change_claimed_at');
    t.dropColumn('store_fixed_at');
    t.dropColumn('store_closed_at');
  });
  await knex.raw('DROP INDEX delivery_links_one_per_closure');
  await knex.raw('ALTER TABLE delivery_links DROP CONSTRAINT delivery_links_store_change_shape');
  await knex.raw('ALTER TABLE delivery_links DROP CONSTRAINT delivery_links_purpose_valid');
  await knex.schema.alterTable('delivery_links', (t) => {
    t.dropColumn('used_at');
    t.dropColumn('closed_store_id');
    t.dropColumn('shipment_id');
    t.dropColumn('purpose');
  });
}
