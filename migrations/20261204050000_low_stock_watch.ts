import type { Knex } from 'knex';

/**
 * The owner hears once when a product's available units cross the low-stock threshold downward
 * (and once when they reach 0), again only after the stock went back above it.
 *
 * Availability changes where the application cannot see its result: a checkout takes its units in
 * a deferred trigger while it COMMITs (migration 20261201000200), and concurrent checkouts of one
 * product update different stock slots. So the crossing is detected by the database, at COMMIT:
 *
 * - `shop_settings` holds the threshold (`low_stock_threshold`). Workers write LOW_STOCK_THRESHOLD
 *   there when they start, so every process's checkouts are judged by one value (the last started
 *   worker's); the trigger reads it from there.
 * - `stock_watch` has one row per product with two flags: `low_armed` (available was above the
 *   threshold since the last low-stock notice) and `out_armed` (available was above 0 since the
 *   last sold-out notice). New products start disarmed (they have no stock; their first stock arms them).
 * - A deferred constraint trigger on `stock_slots` fires when a slot's availability changed. A sale
 *   that leaves its slot above the threshold leaves the product above it too (a product's total is
 *   at least any slot's), so it returns after one indexed read: the hot path. Otherwise it locks the
 *   product's `stock_watch` row, then adds up the product's slots (a fresh snapshot, taken after the
 *   lock: every transaction that could change the flags holds that lock until it commits, so each
 *   sees all the others that committed before it), records a crossing in `stock_crossings` when an
 *   armed flag meets its limit, and sets the flags to what the total says (re-arming after a restock
 *   or a release). The locks come after every slot lock of the transaction (deferred events fire in
 *   the order their slot updates happened: ascending product), so the lock order stays fixed.
 *   It relies on READ COMMITTED (a fresh snapshot per statement), the only level the shop uses.
 * - A job turns unsent crossing rows into owner notices exactly once (`notified_at`, and the outbox
 *   dedupe key `stock:<crossing id>`).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE shop_settings (
      name text PRIMARY KEY,
      value text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(`INSERT INTO shop_settings (name, value) VALUES ('low_stock_threshold', '5')`);

  await knex.raw(`
    CREATE TABLE stock_watch (
      product_id int PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,
      low_armed boolean NOT NULL,
      out_armed boolean NOT NULL
    )`);
  await knex.raw(`
    INSERT INTO stock_watch (product_id, low_armed, out_armed)
    SELECT p.id, coalesce(s.stock_on_hand - s.stock_reserved, 0) > 5, coalesce(s.stock_on_hand - s.stock_reserved, 0) > 0
      FROM products p LEFT JOIN product_stock s ON s.product_id = p.id`);

  await knex.raw(`
    CREATE TABLE stock_crossings (
      id bigserial PRIMARY KEY,
      product_id int NOT NULL REFERENCES products (id) ON DELETE CASCADE,
      kind text NOT NULL CONSTRAINT stock_crossings_kind_valid CHECK (kind IN ('low', 'sold-out')),
      available int NOT NULL,
      threshold int NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      notified_at timestamptz
    )`);
  await knex.raw('CREATE INDEX stock_crossings_unsent_idx ON stock_crossings (id) WHERE notified_at IS NULL');
  await knex.raw('CREATE INDEX stock_crossings_product_idx ON stock_crossings (product_id)');

  await knex.raw(`
    CREATE FUNCTION products_add_stock_watch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO stock_watch (product_id, low_armed, out_armed) VALUES (NEW.id, false, false);
      RETURN NULL;
    END $$`);
  await knex.raw(`
    CREATE TRIGGER products_add_stock_watch AFTER INSERT ON products
      FOR EACH ROW EXECUTE FUNCTION products_add_stock_watch()`);

  await knex.raw(`
    CREATE FUNCTION stock_watch_check() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      v_threshold int;
      v_total int;
      v_low boolean;
      v_out boolean;
    BEGIN
      SELECT value::int INTO v_threshold FROM shop_settings WHERE name = 'low_stock_threshold';
      v_threshold := coalesce(v_threshold, 5);
      IF NEW.on_hand - NEW.reserved < OLD.on_hand - OLD.reserved AND NEW.on_hand - NEW.reserved > v_threshold THEN
        RETURN NULL;
      END IF;
      SELECT w.low_armed, w.out_armed INTO v_low, v_out FROM stock_watch w WHERE w.product_id = NEW.product_id FOR UPDATE;
      IF NOT FOUND THEN
        RETURN NULL;
      END IF;
      SELECT coalesce(sum(s.on_hand - s.reserved), 0) INTO v_total FROM stock_slots s WHERE s.product_id = NEW.product_id;
      IF v_total <= 0 AND v_out THEN
        INSERT INTO stock_crossings (product_id, kind, available, threshold) VALUES (NEW.product_id, 'sold-out', v_total, v_threshold);
      ELSIF v_total <= v_threshold AND v_low THEN
        INSERT INTO stock_crossings (product_id, kind, available, threshold) VALUES (NEW.product_id, 'low', v_total, v_threshold);
      END IF;
      IF v_low <> (v_total > v_threshold) OR v_out <> (v_total > 0) THEN
        UPDATE stock_watch SET low_armed = v_total > v_threshold, out_armed = v_total > 0 WHERE product_id = NEW.product_id;
      END IF;
      RETURN NULL;
    END $$`);
  await knex.raw(`
    CREATE CONSTRAINT TRIGGER stock_slots_watch AFTER UPDATE ON stock_slots
      DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW WHEN (NEW.on_hand - NEW.reserved <> OLD.on_hand - OLD.reserved)
      EXECUTE FUNCTION stock_watch_check()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER stock_slots_watch ON stock_slots');
  await knex.raw('DROP FUNCTION stock_watch_check()');
  await knex.raw('DROP TRIGGER products_add_stock_watch ON products');
  await knex.raw('DROP FUNCTION products_add_stock_watch()');
  await knex.raw('DROP TABLE stock_crossings');
  await knex.raw('DROP TABLE stock_watch');
  await knex.raw('DROP TABLE shop_settings');
}
