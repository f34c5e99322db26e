import type { Knex } from 'knex';

/**
 * Wallet top-ups are paid through the same bank trades as orders. A payment attempt (one bank
 * trade number) now pays either an order or a top-up, never both: the bank callbacks, the checks
 * of amount and merchant, the confirmation with the bank and reconciliation stay one path, and a
 * top-up never becomes an order (no stock, no hold, no order events for other listeners to see).
 *
 * A top-up request is what the shopper asked for (amount) and may get several attempts (switching
 * method); every attempt the bank reports paid credits the wallet once, under the ledger source
 * `topup:<attempt id>`, money being money even when the shopper paid twice.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('wallet_topups', (t) => {
    t.bigIncrements('id');
    t.text('line_user_id').notNullable();
    t.integer('amount').notNullable();
    t.text('status').notNullable().defaultTo('pending');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('paid_at', { useTz: true });
    t.index(['line_user_id', 'created_at']);
  });
  await knex.raw('ALTER TABLE wallet_topups ADD CONSTRAINT wallet_topups_amount_positive CHECK (amount > 0)');
  await knex.raw("ALTER TABLE wallet_topups ADD CONSTRAINT wallet_topups_status_valid CHECK (status IN ('pending', 'paid'))");

  await knex.raw('ALTER TABLE payment_attempts ALTER COLUMN order_id DROP NOT NULL');
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.bigInteger('topup_id').references('wallet_topups.id');
    t.index(['topup_id']);
  });
  await knex.raw('ALTER TABLE payment_attempts ADD CONSTRAINT payment_attempts_pays_one CHECK (num_nonnulls(order_id, topup_id) = 1)');
}

export async function down(knex: Knex): Promise<void> {
  // Top-up attempts cannot be kept once attempts must name an order again: refuse rather than lose them.
  const [{ n }] = await knex('payment_attempts').whereNotNull('topup_id').count<{ n: number }[]>({ n: '*' });
  if (Number(n) > 0) throw new Error('payment_attempts holds top-up attempts; cannot make order_id NOT NULL again');
  await knex.raw('ALTER TABLE payment_attempts DROP CONSTRAINT payment_attempts_pays_one');
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.dropColumn('topup_id');
  });
  await knex.raw('ALTER TABLE payment_attempts ALTER COLUMN order_id SET NOT NULL');
  await knex.schema.dropTable('wallet_topups');
}
