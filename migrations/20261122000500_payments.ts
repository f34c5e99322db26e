import type { Knex } from 'knex';

/**
 * A payment attempt is one bank order (SinoPac OrderNo / ECPay MerchantTradeNo) for one order.
 * Notifications are recorded (deduplicated) before they are acted on; refunds are per order.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('payment_attempts', (t) => {
    t.bigIncrements('id');
    t.bigInteger('order_id').notNullable().references('orders.id');
    t.text('provider').notNullable();
    t.text('method').notNullable();
    t.text('trade_no').notNullable().unique();
    t.text('public_ref').notNullable().unique();
    t.text('request_key').unique();
    t.integer('amount').notNullable();
    t.text('status').notNullable();
    t.text('gateway_trade_id');
    t.jsonb('details').notNullable().defaultTo('{}');
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('paid_at', { useTz: true });
    t.timestamp('last_checked_at', { useTz: true });
    t.integer('check_count').notNullable().defaultTo(0);
    t.index(['order_id']);
  });
  await knex.raw(
    "ALTER TABLE payment_attempts ADD CONSTRAINT payment_attempts_status_valid CHECK (status IN ('creating','pending','paid','failed','superseded'))",
  );
  await knex.raw("CREATE INDEX payment_attempts_pending_idx ON payment_attempts (created_at) WHERE status = 'pending'");
  // At most one paid attempt per order: a second bank payment is a refund case, never a second "paid".
  await knex.raw("CREATE UNIQUE INDEX payment_attempts_one_paid ON payment_attempts (order_id) WHERE status = 'paid'");

  await knex.schema.createTable('payment_notifications', (t) => {
    t.bigIncrements('id');
    t.text('provider').notNullable();
    t.text('dedupe_key').notNullable();
    t.text('kind').notNullable();
    t.text('trade_no');
    t.jsonb('payload').notNullable();
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('processed_at', { useTz: true });
    t.text('outcome');
    t.unique(['provider', 'dedupe_key']);
  });

  await knex.schema.createTable('refunds', (t) => {
    t.bigIncrements('id');
    t.bigInteger('order_id').notNullable().references('orders.id');
    t.bigInteger('attempt_id').notNullable().references('payment_attempts.id');
    t.integer('amount').notNullable();
    t.text('status').notNullable();
    t.text('requested_by').notNullable();
    t.jsonb('gateway_response');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['order_id']);
  });
  await knex.raw('ALTER TABLE refunds ADD CONSTRAINT refunds_amount_positive CHECK (amount > 0)');
  await knex.raw("ALTER TABLE refunds ADD CONSTRAINT refunds_status_valid CHECK (status IN ('pending','succeeded','failed'))");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('refunds');
  await knex.schema.dropTable('payment_notifications');
  await knex.schema.dropTable('payment_attempts');
}
