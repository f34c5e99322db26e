import type { Knex } from 'knex';

/**
 * A reply whose answer never came (timeout, connection lost, 5xx) may or may not have been
 * delivered, and LINE's reply API takes no retry key. Such a row is marked, and its next attempt
 * replies again with the same token while it is fresh: LINE either delivers it now or refuses the
 * token as used, which (the token being ours alone) means the first reply was delivered.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('outbox_messages', (t) => {
    t.boolean('reply_unclear').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('outbox_messages', (t) => t.dropColumn('reply_unclear'));
}
