import type { Knex } from 'knex';

/**
 * The offline journal of store devices (POST /api/pos/journal).
 * - `pos_requests`: every accepted upload, by its signature: the same signed body sent again (a
 *   replay) finds it and is refused before anything is applied.
 * - `pos_journal`: one row per (device_id, txn_no), the purchase as the device recorded it and what
 *   came of it. `applied` is final (the wallet was debited under `pos:<device>:<txn_no>`); a
 *   `rejected` entry (it would have overdrawn, or named no member) is tried again when uploaded again.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('pos_requests', (t) => {
    t.bigIncrements('id');
    t.text('signature').notNullable().unique();
    t.text('device_id').notNullable();
    t.integer('entries').notNullable();
    t.jsonb('summary');
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('pos_journal', (t) => {
    t.bigIncrements('id');
    t.text('device_id').notNullable();
    t.text('txn_no').notNullable();
    t.text('line_user_id');
    t.integer('amount').notNullable();
    t.timestamp('occurred_at', { useTz: true }).notNullable();
    t.text('status').notNullable();
    t.text('reason');
    t.bigInteger('entry_id');
    t.bigInteger('request_id').notNullable().references('pos_requests.id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['device_id', 'txn_no']);
  });
  await knex.raw("ALTER TABLE pos_journal ADD CONSTRAINT pos_journal_status_valid CHECK (status IN ('applied', 'rejected'))");
  await knex.raw('ALTER TABLE pos_journal ADD CONSTRAINT pos_journal_amount_positive CHECK (amount > 0)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('pos_journal');
  await knex.schema.dropTable('pos_requests');
}
