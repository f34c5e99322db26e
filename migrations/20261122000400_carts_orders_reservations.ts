import type { Knex } from 'knex';

/**
 * Stock is on-hand and reserved (available = on_hand - reserved). The CHECK constraints make
 * overselling impossible at the database level, whatever the application does.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('products', (t) => {
    t.integer('stock_reserved').notNullable().defaultTo(0);
  });
  await knex.raw('ALTER TABLE products ADD CONSTRAINT products_reserved_nonneg CHECK (stock_reserved >= 0)');
  await knex.raw('ALTER TABLE products ADD CONSTRAINT products_reserved_le_on_hand CHECK (stock_reserved <= stock_on_hand)');

  await knex.schema.createTable('carts', (t) => {
    t.increments('id');
    t.text('line_user_id').notNullable().unique();
    t.integer('version').notNullable().defaultTo(0);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('cart_lines', (t) => {
    t.integer('cart_id').notNullable().references('carts.id').onDelete('CASCADE');
    t.integer('product_id').notNullable().references('products.id');
    t.integer('qty').notNullable();
    t.timestamp('added_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['cart_id', 'product_id']);
  });
  await knex.raw('ALTER TABLE cart_lines ADD CONSTRAINT cart_lines_qty_positive CHECK (qty > 0)');

  await knex.raw('CREATE SEQUENCE order_no_seq START 1001');

  await knex.schema.createTable('orders', (t) => {
    t.bigIncrements('id');
    t.text('order_no').notNullable().unique();
    t.text('line_user_id').notNullable();
    t.text('status').notNullable();
    t.integer('total').notNullable();
    t.integer('item_count').notNullable();
    t.text('payment_method');
    t.timestamp('hold_expires_at', { useTz: true }).notNullable();
    t.integer('cart_id').notNullable();
    t.integer('cart_version').notNullable();
    t.integer('paid_amount').notNullable().defaultTo(0);
    t.integer('refunded_amount').notNullable().defaultTo(0);
    t.text('tracking_no');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('paid_at', { useTz: true });
    t.timestamp('shipped_at', { useTz: true });
    t.timestamp('completed_at', { useTz: true });
    t.timestamp('closed_at', { useTz: true });
    // A double tap or a replayed checkout of the same cart version cannot make a second order.
    t.unique(['cart_id', 'cart_version']);
    t.index(['line_user_id', 'created_at']);
  });
  await knex.raw(
    "ALTER TABLE orders ADD CONSTRAINT orders_status_valid CHECK (status IN ('pending_payment','paid','shipped','completed','expired','cancelled','paid_no_stock','refunded'))",
  );
  await knex.raw('ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0)');
  await knex.raw('ALTER TABLE orders ADD CONSTRAINT orders_refund_le_paid CHECK (refunded_amount >= 0 AND refunded_amount <= paid_amount)');
  await knex.raw("CREATE INDEX orders_pending_hold_idx ON orders (hold_expires_at) WHERE status = 'pending_payment'");

  await knex.schema.createTable('order_lines', (t) => {
    t.bigIncrements('id');
    t.bigInteger('order_id').notNullable().references('orders.id');
    t.integer('product_id').notNullable().references('products.id');
    t.text('sku').notNullable();
    t.text('name').notNullable();
    t.integer('unit_price').notNullable();
    t.integer('qty').notNullable();
    t.integer('line_total').notNullable();
    t.index(['order_id']);
  });
  await knex.raw('ALTER TABLE order_lines ADD CONSTRAINT order_lines_qty_positive CHECK (qty > 0)');

  await knex.schema.createTable('reservations', (t) => {
    t.bigIncrements('id');
    t.bigInteger('order_id').notNullable().references('orders.id');
    t.bigInteger('order_line_id').notNullable().references('order_lines.id');
    t.integer('product_id').notNullable().references('products.id');
    t.integer('qty').notNullable();
    t.text('status').notNullable().defaultTo('held');
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('committed_at', { useTz: true });
    t.timestamp('released_at', { useTz: true });
    t.index(['order_id']);
    t.index(['product_id', 'status']);
  });
  await knex.raw("ALTER TABLE reservations ADD CONSTRAINT reservations_status_valid CHECK (status IN ('held','committed','released'))");
  await knex.raw('ALTER TABLE reservations ADD CONSTRAINT reservations_qty_positive CHECK (qty > 0)');
  await knex.raw(
    'ALTER TABLE reservations ADD CONSTRAINT reservations_not_both CHECK (committed_at IS NULL OR released_at IS NULL)',
  );

  await knex.schema.createTable('order_events', (t) => {
    t.bigIncrements('id');
    t.bigInteger('order_id').notNullable().references('orders.id');
    t.text('from_status');
    t.text('to_status').notNullable();
    t.text('reason').notNullable();
    t.text('actor').notNullable();
    t.jsonb('details');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['order_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('order_events');
  await knex.schema.dropTable('reservations');
  await knex.schema.dropTable('order_lines');
  await knex.schema.dropTable('orders');
  await knex.raw('DROP SEQUENCE order_no_seq');
  await knex.schema.dropTable('cart_lines');
  await knex.schema.dropTable('carts');
  await knex.raw('ALTER TABLE products DROP CONSTRAINT products_reserved_le_on_hand');
  await knex.raw('ALTER TABLE products DROP CONSTRAINT products_reserved_nonneg');
  await knex.schema.alterTable('products', (t) => t.dropColumn('stock_reserved'));
}
