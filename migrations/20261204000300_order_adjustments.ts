import type { Knex } from 'knex';

/**
 * Amounts an order adds to or takes off its goods: a delivery fee, a member tier discount, points
 * redeemed. Each is a line of the order, snapshotted with its label like prices are, at most one
 * per kind. orders.total = Σ order_lines.line_total + Σ order_adjustments.amount (checked by
 * `npm run check:invariants`), and is what the bank is asked for.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('order_adjustments', (t) => {
    t.bigIncrements('id');
    t.bigInteger('order_id').notNullable().references('orders.id').onDelete('CASCADE');
    t.text('kind').notNullable();
    /** zh-TW label as the shopper saw it (e.g. 超商取貨運費, 金卡 9 折). */
    t.text('label').notNullable();
    /** Signed integer TWD: a fee is positive, a discount negative. */
    t.integer('amount').notNullable();
    t.jsonb('details');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['order_id', 'kind']);
  });
  await knex.raw("ALTER TABLE order_adjustments ADD CONSTRAINT order_adjustments_kind_valid CHECK (kind ~ '^[a-z][a-z0-9-]{0,39}$')");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('order_adjustments');
}
