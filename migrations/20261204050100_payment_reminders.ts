import type { Knex } from 'knex';

/**
 * Unpaid orders remind their shopper once before the hold ends.
 * - `hold_set_at`: when the current hold was set (choosing a method moves the hold; until then the
 *   hold started with the order, `created_at`). The reminder is skipped for a hold shorter than twice
 *   its lead time, which needs the hold's length.
 * - `reminded_at`: set in the transaction that writes the reminder to the outbox; with the outbox
 *   dedupe key `order:<id>:reminder` it makes the reminder once per order whatever the jobs do.
 * The existing partial index on (hold_expires_at) WHERE status = 'pending_payment' serves the sweeper.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('orders', (t) => {
    t.timestamp('hold_set_at', { useTz: true });
    t.timestamp('reminded_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('orders', (t) => {
    t.dropColumn('reminded_at');
    t.dropColumn('hold_set_at');
  });
}
