import type { Knex } from 'knex';

/**
 * One-time payment codes shown on the member card (QR), valid 15 minutes. Only a hash of the code
 * is kept. The QR picture is served from an unguessable reference (`qr_ref_hash` is its hash): the
 * code is sealed (AES-256-GCM) under a key derived from that reference, which only the card's
 * LINE message holds, so the database alone never yields a code. A new code replaces the old one
 * (at most one live code per member); a used or replaced code loses its sealed copy.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('member_codes', (t) => {
    t.bigIncrements('id');
    t.text('line_user_id').notNullable();
    t.text('code_hash').notNullable().unique();
    t.text('qr_ref_hash').notNullable().unique();
    t.binary('code_sealed');
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('used_at', { useTz: true });
    t.timestamp('replaced_at', { useTz: true });
  });
  await knex.raw('CREATE UNIQUE INDEX member_codes_one_live ON member_codes (line_user_id) WHERE used_at IS NULL AND replaced_at IS NULL');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('member_codes');
}
