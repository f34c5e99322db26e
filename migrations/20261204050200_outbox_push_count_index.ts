import type { Knex } from 'knex';

/**
 * The daily summary reports how many pushes went out today and this month (pushes count against
 * LINE's monthly quota, replies do not): an index over the sent time of pushes only.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw("CREATE INDEX outbox_pushes_sent_idx ON outbox_messages (sent_at) WHERE delivered_via = 'push'");
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX outbox_pushes_sent_idx');
}
