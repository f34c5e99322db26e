import type { Knex } from 'knex';

/**
 * The owner's back office logs in from LINE, without passwords: `後台` in the chat issues a
 * one-time login token (stored as its SHA-256, used once, valid 10 minutes); opening its link
 * makes a session (stored as the SHA-256 of the cookie's random id) that any web process accepts.
 * A session ends on 登出, after 12 idle hours or 7 days, or when its owner leaves the config
 * (checked on every request). `admin_form_results` makes every form submission idempotent: the
 * first submission of a form key stores its outcome, a repeat gets that outcome and changes nothing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('admin_login_tokens', (t) => {
    t.bigIncrements('id');
    t.text('token_hash').notNullable().unique();
    t.text('line_user_id').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('used_at', { useTz: true });
    t.index(['line_user_id', 'created_at']);
  });

  await knex.schema.createTable('admin_sessions', (t) => {
    t.bigIncrements('id');
    t.text('session_hash').notNullable().unique();
    t.text('line_user_id').notNullable();
    /** Synchronizer token of the session's forms (hidden field `_csrf`, checked on every POST). */
    t.text('csrf_token').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_seen_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    /** Absolute end (7 days after login); the idle end is last_seen_at + 12 h. */
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('ended_at', { useTz: true });
    t.text('ended_reason');
    t.jsonb('origin');
    t.index(['line_user_id']);
  });

  await knex.schema.createTable('admin_form_results', (t) => {
    t.bigInteger('session_id').notNullable().references('admin_sessions.id').onDelete('CASCADE');
    t.text('form_key').notNullable();
    t.jsonb('result');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['session_id', 'form_key']);
  });
  await knex.raw("ALTER TABLE admin_form_results ADD CONSTRAINT admin_form_results_key_valid CHECK (form_key ~ '^[A-Za-z0-9_-]{16,64}$')");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('admin_form_results');
  await knex.schema.dropTable('admin_sessions');
  await knex.schema.dropTable('admin_login_tokens');
}
