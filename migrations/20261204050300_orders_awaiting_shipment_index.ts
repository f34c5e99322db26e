import type { Knex } from 'knex';

/** The owner's 待出貨 (paid orders waiting to ship, oldest payment first) reads only paid orders. */
export async function up(knex: Knex): Promise<void> {
  await knex.raw("CREATE INDEX orders_awaiting_shipment_idx ON orders (paid_at, id) WHERE status = 'paid'");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX orders_awaiting_shipment_idx');
}
