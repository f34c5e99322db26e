import type { Knex } from 'knex';

/** The carrier an owner shipped with (home delivery: the owner names it with the tracking number). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('orders', (t) => {
    t.text('carrier');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('orders', (t) => {
    t.dropColumn('carrier');
  });
}
