import type { Knex } from 'knex';

/**
 * Every owner action, from the chat or the back office, as one row: who, what, on what, the state
 * before and after, when, and from where. Append-only (the application never updates or deletes).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_log', (t) => {
    t.bigIncrements('id');
    t.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    /** `owner:<LINE userId>` or `system`. */
    t.text('actor').notNullable();
    /** `line` (a chat command), `web` (the back office) or `system`. */
    t.text('source').notNullable();
    /** e.g. `order.ship`, `product.update`, `stock.set`, `refund.request`. */
    t.text('action').notNullable();
    t.text('target_type').notNullable();
    t.text('target_id').notNullable();
    t.jsonb('before');
    t.jsonb('after');
    t.text('reason');
    /** Where it came from beyond the source: IP and user agent for the web, nothing for LINE. */
    t.jsonb('origin');
    t.index(['at']);
    t.index(['target_type', 'target_id', 'at']);
    t.index(['actor', 'at']);
  });
  await knex.raw("ALTER TABLE audit_log ADD CONSTRAINT audit_log_source_valid CHECK (source IN ('line', 'web', 'system'))");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_log');
}
