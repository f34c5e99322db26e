import type { Knex } from 'knex';

/**
 * Delivery details page (issue 13, checkout half): what a delivery link remembers between the
 * shopper's page, ECPay's store map and back.
 *
 * - method / sub_type: the method the shopper picked in the chat (the page opens on it).
 * - csrf_token: the synchronizer token every POST of the page must carry (with a same-origin check).
 * - draft: what the shopper typed before opening the store map (name, phone), shown again when the
 *   map sends the browser back. Never read as the order's details: only a completed, validated
 *   form (or map reply) writes the order.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('delivery_links', (t) => {
    t.text('method');
    t.text('sub_type');
    t.text('csrf_token');
    t.jsonb('draft');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('delivery_links', (t) => {
    t.dropColumn('draft');
    t.dropColumn('csrf_token');
    t.dropColumn('sub_type');
    t.dropColumn('method');
  });
}
