import type { Knex } from 'knex';

/**
 * jsonb cannot hold U+0000 or a lone surrogate, both of which a LINE text or postback may carry
 * (LINE escapes whatever the user typed). Such an event is stored in `payload` with U+FFFD in their
 * place; the event exactly as LINE sent it (JSON text, where those characters stay \u escapes) is
 * kept here, only for those events.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('line_events', (t) => {
    t.text('payload_original');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('line_events', (t) => {
    t.dropColumn('payload_original');
  });
}
