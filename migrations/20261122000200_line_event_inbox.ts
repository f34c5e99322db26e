import type { Knex } from 'knex';

/** Every webhook event is stored here before LINE gets its 200; unique on webhookEventId. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('line_events', (t) => {
    t.bigIncrements('id');
    t.text('webhook_event_id').notNullable().unique();
    t.text('event_type').notNullable();
    t.text('source_user_id');
    t.jsonb('payload').notNullable();
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('processed_at', { useTz: true });
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('failed_at', { useTz: true });
    t.text('last_error');
  });
  await knex.raw(
    'CREATE INDEX line_events_pending_idx ON line_events (received_at) WHERE processed_at IS NULL AND failed_at IS NULL',
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('line_events');
}
