import type { Knex } from 'knex';

/**
 * Messages to LINE are written here in the same transaction as the state change they report,
 * and delivered after commit. retry_key is generated once and reused by every push attempt.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('outbox_messages', (t) => {
    t.bigIncrements('id');
    t.text('dedupe_key').unique();
    t.text('kind').notNullable();
    t.text('recipient').notNullable();
    t.text('reply_token');
    t.timestamp('reply_deadline', { useTz: true });
    t.jsonb('messages').notNullable();
    t.uuid('retry_key').notNullable().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('status').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('claimed_until', { useTz: true });
    t.integer('last_status');
    t.text('last_error');
    t.text('delivered_via');
    t.text('line_request_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('sent_at', { useTz: true });
  });
  await knex.raw(
    "ALTER TABLE outbox_messages ADD CONSTRAINT outbox_status_valid CHECK (status IN ('pending','sending','sent','undeliverable','failed'))",
  );
  await knex.raw("CREATE INDEX outbox_pending_idx ON outbox_messages (created_at) WHERE status IN ('pending','sending')");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('outbox_messages');
}
