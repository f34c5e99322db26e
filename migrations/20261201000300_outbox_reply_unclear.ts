import type { Knex } from 'knex';

/**
 * A reply whose answer never came (timeout, connection lost, 5xx) may or may not have been
 * delivered, and LINE's reply API takes no retry key. Such a row is marked (reply_unclear), and its
 * next attempt replies again with the same token: LINE either delivers it now or refuses the token.
 * A refusal while the token is surely still valid (reply_token_at, when we got it, is recent) means
 * the first reply used it; a later refusal may just be expiry, so the message is pushed instead.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('outbox_messages', (t) => {
    t.boolean('reply_unclear').notNullable().defaultTo(false);
    t.timestamp('reply_token_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('outbox_messages', (t) => {
    t.dropColumn('reply_token_at');
    t.dropColumn('reply_unclear');
  });
}
