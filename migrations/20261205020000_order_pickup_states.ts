import type { Knex } from 'knex';

/**
 * Store pickup (issue 13, shipment half): an order can wait at the pickup store (`at_store`) and
 * come back unclaimed (`returned`). The shipment's status history is read per shipment.
 */
const BEFORE = "'pending_payment','paid','shipped','completed','expired','cancelled','paid_no_stock','refunded'";
const AFTER = `${BEFORE},'at_store','returned'`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE orders DROP CONSTRAINT orders_status_valid');
  await knex.raw(`ALTER TABLE orders ADD CONSTRAINT orders_status_valid CHECK (status IN (${AFTER}))`);
  await knex.raw(
    "ALTER TABLE shipments ADD CONSTRAINT shipments_status_valid CHECK (status IN ('creating','unknown','created','shipped','arrived_at_store','picked_up','returned','failed','cancelled'))",
  );
  await knex.raw('CREATE INDEX logistics_notifications_shipment_idx ON logistics_notifications (shipment_id, id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX logistics_notifications_shipment_idx');
  await knex.raw('ALTER TABLE shipments DROP CONSTRAINT shipments_status_valid');
  await knex.raw('ALTER TABLE orders DROP CONSTRAINT orders_status_valid');
  await knex.raw(`ALTER TABLE orders ADD CONSTRAINT orders_status_valid CHECK (status IN (${BEFORE}))`);
}
