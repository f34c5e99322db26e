import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('line_users', (t) => {
    t.text('user_id').primary();
    t.text('display_name');
    t.boolean('following').notNullable().defaultTo(true);
    t.timestamp('followed_at', { useTz: true });
    t.timestamp('unfollowed_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('categories', (t) => {
    t.increments('id');
    t.text('slug').notNullable().unique();
    t.text('name').notNullable();
    t.integer('sort_order').notNullable().defaultTo(0);
  });

  await knex.schema.createTable('products', (t) => {
    t.increments('id');
    t.text('sku').notNullable().unique();
    t.integer('category_id').notNullable().references('categories.id');
    t.text('name').notNullable();
    t.text('description').notNullable().defaultTo('');
    t.integer('price').notNullable();
    t.text('image_url').notNullable();
    t.boolean('active').notNullable().defaultTo(true);
    t.integer('stock_on_hand').notNullable().defaultTo(0);
    t.integer('sort_order').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['active', 'sort_order', 'id']);
  });
  await knex.raw('ALTER TABLE products ADD CONSTRAINT products_price_positive CHECK (price > 0)');
  await knex.raw('ALTER TABLE products ADD CONSTRAINT products_on_hand_nonneg CHECK (stock_on_hand >= 0)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('products');
  await knex.schema.dropTable('categories');
  await knex.schema.dropTable('line_users');
}
