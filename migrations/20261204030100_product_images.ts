import type { Knex } from 'knex';

/**
 * Product photos uploaded in the back office, stored in PostgreSQL so every web process serves
 * them. Each is a JPEG already within LINE's limits (≤ 1 MB, ≤ 1024 px), addressed by the SHA-256
 * of its bytes: the same photo uploaded twice is one row, and its URL never changes meaning, so it
 * can be cached for a year. A product points at its current photo (`image_id`); `image_url` stays
 * for photos hosted elsewhere (the demo catalog) and may now be empty (then a placeholder is shown).
 * Categories get an owner-chosen order; SKUs are unique whatever their case.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('product_images', (t) => {
    t.bigIncrements('id');
    t.text('sha256').notNullable().unique();
    t.binary('bytes').notNullable();
    t.integer('width').notNullable();
    t.integer('height').notNullable();
    t.integer('byte_size').notNullable();
    t.text('content_type').notNullable().defaultTo('image/jpeg');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw("ALTER TABLE product_images ADD CONSTRAINT product_images_sha256_hex CHECK (sha256 ~ '^[0-9a-f]{64}$')");
  await knex.raw('ALTER TABLE product_images ADD CONSTRAINT product_images_within_line_limits CHECK (byte_size <= 1000000 AND width <= 1024 AND height <= 1024)');

  await knex.schema.alterTable('products', (t) => {
    t.bigInteger('image_id').references('product_images.id');
  });
  await knex.raw('ALTER TABLE products ALTER COLUMN image_url DROP NOT NULL');
  await knex.raw('CREATE UNIQUE INDEX products_sku_upper_unique ON products (upper(sku))');
  // Owner's list searches by name and sorts by update; the orders list filters by date.
  await knex.raw('CREATE INDEX products_updated_at_idx ON products (updated_at)');
  await knex.raw('CREATE INDEX orders_created_at_idx ON orders (created_at, id)');
  await knex.raw('CREATE INDEX orders_status_created_idx ON orders (status, created_at)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX orders_status_created_idx');
  await knex.raw('DROP INDEX orders_created_at_idx');
  await knex.raw('DROP INDEX products_updated_at_idx');
  await knex.raw('DROP INDEX products_sku_upper_unique');
  // A product without a photo URL gets the empty string back, as before this migration.
  await knex.raw("UPDATE products SET image_url = '' WHERE image_url IS NULL");
  await knex.raw('ALTER TABLE products ALTER COLUMN image_url SET NOT NULL');
  await knex.schema.alterTable('products', (t) => {
    t.dropColumn('image_id');
  });
  await knex.schema.dropTable('product_images');
}
