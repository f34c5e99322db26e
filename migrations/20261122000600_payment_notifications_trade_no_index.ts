import type { Knex } from 'knex';

/** Notifications are looked up by trade number (simulated-payment checks, reconciliation). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payment_notifications', (t) => t.index(['trade_no'], 'payment_notifications_trade_no_idx'));
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payment_notifications', (t) => t.dropIndex(['trade_no'], 'payment_notifications_trade_no_idx'));
}
