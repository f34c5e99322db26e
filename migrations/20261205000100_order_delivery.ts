import type { Knex } from 'knex';

/**
 * Delivery (issue 13): who receives an order's parcel, where and how.
 *
 * - orders.delivery_*: the method the shopper chose (home delivery, or pickup at one store chain)
 *   and the recipient, snapshotted on the order like its prices. The fee is an order adjustment
 *   of kind `shipping`. delivery_ready_at is set once the details are complete; payment methods
 *   are offered only after it.
 * - delivery_profiles: the shopper's last recipient details, offered (editable) next time.
 * - delivery_links: the unguessable, expiring link to the delivery details page (stored hashed),
 *   and the token the ECPay store map echoes back in ExtraData.
 * - shipments: one parcel at ECPay (store pickup) or with a carrier the owner names (home), at
 *   most one live shipment per order.
 * - logistics_notifications: every status notification as received, once per (shipment, code,
 *   time), so a replay changes nothing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('orders', (t) => {
    /** 'home' | 'cvs' (null: chosen later, or an order from before delivery existed). */
    t.text('delivery_method');
    /** ECPay LogisticsSubType for store pickup (UNIMARTC2C, FAMIC2C, …); null for home. */
    t.text('delivery_sub_type');
    t.text('recipient_name');
    t.text('recipient_phone');
    t.text('recipient_zip');
    t.text('recipient_address');
    t.text('store_id');
    t.text('store_name');
    t.text('store_address');
    t.boolean('store_outside');
    t.timestamp('delivery_ready_at', { useTz: true });
  });
  await knex.raw(
    "ALTER TABLE orders ADD CONSTRAINT orders_delivery_method_valid CHECK (delivery_method IS NULL OR delivery_method IN ('home', 'cvs'))",
  );

  await knex.schema.createTable('delivery_profiles', (t) => {
    t.text('line_user_id').primary();
    t.text('delivery_method').notNullable();
    t.text('delivery_sub_type');
    t.text('recipient_name').notNullable();
    t.text('recipient_phone').notNullable();
    t.text('recipient_zip');
    t.text('recipient_address');
    t.text('store_id');
    t.text('store_name');
    t.text('store_address');
    t.boolean('store_outside');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('delivery_links', (t) => {
    t.bigIncrements('id');
    t.bigInteger('order_id').notNullable().references('orders.id').onDelete('CASCADE');
    /** sha256 of the random token in the page's URL. */
    t.text('token_hash').notNullable().unique();
    /** Random token sent to ECPay's store map as ExtraData and echoed back in its reply. */
    t.text('map_token').unique();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['order_id']);
  });

  await knex.schema.createTable('shipments', (t) => {
    t.bigIncrements('id');
    t.bigInteger('order_id').notNullable().references('orders.id');
    /** 'ecpay' for store pickup; for home delivery the carrier key the owner chose. */
    t.text('provider').notNullable();
    t.text('delivery_sub_type');
    /** Our MerchantTradeNo at ECPay (unique per attempt); null for home delivery. */
    t.text('merchant_trade_no').unique();
    t.text('logistics_id');
    /** CVSPaymentNo (+ CVSValidationNo) or the home carrier's tracking number. */
    t.text('shipment_no');
    t.text('validation_no');
    /**
     * creating → created → shipped → arrived_at_store → picked_up | returned; failed (creation
     * refused), unknown (creation outcome unknown: query before trying again).
     */
    t.text('status').notNullable();
    t.text('last_rtn_code');
    t.text('last_rtn_msg');
    t.timestamp('pickup_deadline', { useTz: true });
    t.timestamp('status_at', { useTz: true });
    t.timestamp('last_checked_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['logistics_id']);
    t.index(['status', 'updated_at']);
  });
  // At most one shipment per order that is not a refused attempt: 出貨 sent twice creates one.
  await knex.raw("CREATE UNIQUE INDEX shipments_one_live_per_order ON shipments (order_id) WHERE status <> 'failed'");

  await knex.schema.createTable('logistics_notifications', (t) => {
    t.bigIncrements('id');
    t.bigInteger('shipment_id').references('shipments.id');
    t.text('logistics_id');
    t.text('merchant_trade_no');
    t.text('rtn_code');
    t.text('rtn_msg');
    t.text('update_status_date');
    /** Raw form fields as received (strings only). */
    t.jsonb('payload').notNullable();
    /** 'applied' | 'duplicate' | 'rejected' (MAC, merchant, unknown shipment). */
    t.text('outcome').notNullable();
    t.text('reason');
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(
    "CREATE UNIQUE INDEX logistics_notifications_once ON logistics_notifications (shipment_id, rtn_code, update_status_date) WHERE outcome = 'applied'",
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('logistics_notifications');
  await knex.schema.dropTable('shipments');
  await knex.schema.dropTable('delivery_links');
  await knex.schema.dropTable('delivery_profiles');
  await knex.raw('ALTER TABLE orders DROP CONSTRAINT orders_delivery_method_valid');
  await knex.schema.alterTable('orders', (t) => {
    for (const c of [
      'delivery_method', 'delivery_sub_type', 'recipient_name', 'recipient_phone', 'recipient_zip', 'recipient_address',
      'store_id', 'store_name', 'store_address', 'store_outside', 'delivery_ready_at',
    ]) t.dropColumn(c);
  });
}
