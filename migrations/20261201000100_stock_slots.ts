import type { Knex } from 'knex';

/**
 * A product's stock is kept in a few slots instead of one row.
 *
 * Every checkout of a popular product used to update the same products row, and PostgreSQL holds
 * an updated row's lock until the transaction's commit record is on disk: checkouts of one product
 * could only commit one after another, one WAL flush each. With the stock split over N slot rows
 * (each with its own on hand and reserved, 0 <= reserved <= on_hand), N checkouts commit side by
 * side and share their flushes. Units are fungible, so only the totals mean anything to a shopper
 * or the owner: the `product_stock` view adds the slots up (available = on hand - reserved).
 *
 * - A reservation names the slot its units came from (`reservations.slot`); release and payment
 *   give the units back to, or take them from, that slot only.
 * - `stock_allocate` picks slots for a quantity as of the statement's snapshot (one slot that can
 *   take it all, starting from a preferred one; otherwise several, by ascending slot). It takes no
 *   locks; the reservation itself is checked again when its row lock is taken.
 * - `stock_set` (the owner's 庫存 command, the seed) sets the total on hand and spreads what is not
 *   reserved evenly over the slots; it refuses a total below what is reserved.
 * - `stock_take` takes available units for good (a late payment) under the slots' row locks.
 * - Row locks on slots are always taken by ascending (product_id, slot).
 *
 * The products row keeps the catalog (name, price, active) and is no longer written by checkouts.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE FUNCTION stock_slot_count() RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT 4 $$');

  await knex.raw(`
    CREATE TABLE stock_slots (
      product_id int NOT NULL REFERENCES products (id) ON DELETE CASCADE,
      slot smallint NOT NULL,
      on_hand int NOT NULL DEFAULT 0,
      reserved int NOT NULL DEFAULT 0,
      PRIMARY KEY (product_id, slot),
      CONSTRAINT stock_slots_slot_valid CHECK (slot >= 0),
      CONSTRAINT stock_slots_reserved_nonneg CHECK (reserved >= 0),
      CONSTRAINT stock_slots_reserved_le_on_hand CHECK (reserved <= on_hand)
    )`);

  // Existing reservations are in slot 0 (below); from now on every insert must name its slot.
  await knex.raw('ALTER TABLE reservations ADD COLUMN slot smallint NOT NULL DEFAULT 0');
  await knex.raw('ALTER TABLE reservations ALTER COLUMN slot DROP DEFAULT');

  // Existing stock: everything into slot 0 (where the existing reservations now point), then level.
  await knex.raw(`
    INSERT INTO stock_slots (product_id, slot, on_hand, reserved)
    SELECT p.id, s, CASE WHEN s = 0 THEN p.stock_on_hand ELSE 0 END, CASE WHEN s = 0 THEN p.stock_reserved ELSE 0 END
      FROM products p, generate_series(0, stock_slot_count() - 1) s`);

  await knex.raw(`
    CREATE FUNCTION products_add_stock_slots() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO stock_slots (product_id, slot) SELECT NEW.id, s FROM generate_series(0, stock_slot_count() - 1) s;
      RETURN NULL;
    END $$`);
  await knex.raw(`
    CREATE TRIGGER products_add_stock_slots AFTER INSERT ON products
      FOR EACH ROW EXECUTE FUNCTION products_add_stock_slots()`);

  // Returns the product's total reserved; sets the total on hand only if it is not below that.
  await knex.raw(`
    CREATE FUNCTION stock_set(p_product_id int, p_on_hand int) RETURNS int LANGUAGE plpgsql AS $$
    DECLARE
      v_n int;
      v_reserved int;
      v_free int;
    BEGIN
      PERFORM 1 FROM stock_slots WHERE product_id = p_product_id ORDER BY slot FOR UPDATE;
      SELECT count(*), coalesce(sum(reserved), 0) INTO v_n, v_reserved FROM stock_slots WHERE product_id = p_product_id;
      IF v_n = 0 THEN
        RAISE EXCEPTION 'product % has no stock slots', p_product_id USING ERRCODE = 'no_data_found';
      END IF;
      IF p_on_hand < v_reserved THEN
        RETURN v_reserved;
      END IF;
      v_free := p_on_hand - v_reserved;
      -- Slot i (0-based among the product's slots) gets free / n, the first free % n one more.
      UPDATE stock_slots s
         SET on_hand = s.reserved + v_free / v_n + CASE WHEN o.i < v_free % v_n THEN 1 ELSE 0 END
        FROM (SELECT slot, row_number() OVER (ORDER BY slot) - 1 AS i FROM stock_slots WHERE product_id = p_product_id) o
       WHERE s.product_id = p_product_id AND s.slot = o.slot;
      RETURN v_reserved;
    END $$`);
  await knex.raw('SELECT stock_set(id, stock_on_hand) FROM products');

  // Where to take p_qty units from, as of this statement's snapshot (no locks): one slot that has
  // them all, trying the preferred slot first; else the fewest slots (largest availability first,
  // ties from the preferred slot on), listed by ascending slot (the lock order). Returns nothing
  // unless the product's available units cover p_qty.
  await knex.raw(`
    CREATE FUNCTION stock_allocate(p_product_id int, p_qty int, p_pref int)
      RETURNS TABLE (slot smallint, qty int) LANGUAGE plpgsql STABLE AS $$
    BEGIN
      RETURN QUERY
        SELECT s.slot, p_qty FROM stock_slots s
         WHERE s.product_id = p_product_id AND s.on_hand - s.reserved >= p_qty
         ORDER BY (s.slot - p_pref % stock_slot_count() + stock_slot_count()) % stock_slot_count()
         LIMIT 1;
      IF FOUND THEN
        RETURN;
      END IF;
      RETURN QUERY
        SELECT a.slot, least(a.avail, p_qty - a.before)::int
          FROM (SELECT s.slot, s.on_hand - s.reserved AS avail,
                       coalesce(sum(s.on_hand - s.reserved) OVER (
                         ORDER BY s.on_hand - s.reserved DESC, (s.slot - p_pref % stock_slot_count() + stock_slot_count()) % stock_slot_count()
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before,
                       sum(s.on_hand - s.reserved) OVER () AS total
                  FROM stock_slots s WHERE s.product_id = p_product_id AND s.on_hand > s.reserved) a
         WHERE a.total >= p_qty AND a.before < p_qty
         ORDER BY a.slot;
    END $$`);

  // Takes p_qty available units for good (on_hand -= qty), under the slots' row locks. Returns the
  // slots and quantities taken, or nothing (and changes nothing) if fewer than p_qty are available.
  await knex.raw(`
    CREATE FUNCTION stock_take(p_product_id int, p_qty int)
      RETURNS TABLE (slot smallint, qty int) LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM 1 FROM stock_slots s WHERE s.product_id = p_product_id ORDER BY s.slot FOR UPDATE;
      RETURN QUERY
        WITH a AS (
          SELECT x.slot, least(x.avail, p_qty - x.before)::int AS take
            FROM (SELECT s.slot, s.on_hand - s.reserved AS avail,
                         coalesce(sum(s.on_hand - s.reserved) OVER (ORDER BY s.slot ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before,
                         sum(s.on_hand - s.reserved) OVER () AS total
                    FROM stock_slots s WHERE s.product_id = p_product_id AND s.on_hand > s.reserved) x
           WHERE x.total >= p_qty AND x.before < p_qty
        ), u AS (
          UPDATE stock_slots s SET on_hand = s.on_hand - a.take FROM a
           WHERE s.product_id = p_product_id AND s.slot = a.slot
          RETURNING s.slot, a.take
        )
        SELECT u.slot, u.take FROM u ORDER BY u.slot;
    END $$`);

  await knex.raw(`
    CREATE VIEW product_stock AS
      SELECT product_id, sum(on_hand)::int AS stock_on_hand, sum(reserved)::int AS stock_reserved
        FROM stock_slots GROUP BY product_id`);

  await knex.raw('ALTER TABLE products DROP COLUMN stock_on_hand, DROP COLUMN stock_reserved');
  await knex.raw('CREATE INDEX reservations_held_slot_idx ON reservations (product_id, slot) WHERE status = \'held\'');
  await knex.raw('DROP INDEX reservations_product_id_status_index');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX reservations_product_id_status_index ON reservations (product_id, status)');
  await knex.raw('DROP INDEX reservations_held_slot_idx');
  await knex.raw('ALTER TABLE products ADD COLUMN stock_on_hand int NOT NULL DEFAULT 0, ADD COLUMN stock_reserved int NOT NULL DEFAULT 0');
  await knex.raw(`UPDATE products p SET stock_on_hand = s.stock_on_hand, stock_reserved = s.stock_reserved
                    FROM product_stock s WHERE s.product_id = p.id`);
  await knex.raw('ALTER TABLE products ADD CONSTRAINT products_on_hand_nonneg CHECK (stock_on_hand >= 0)');
  await knex.raw('ALTER TABLE products ADD CONSTRAINT products_reserved_nonneg CHECK (stock_reserved >= 0)');
  await knex.raw('ALTER TABLE products ADD CONSTRAINT products_reserved_le_on_hand CHECK (stock_reserved <= stock_on_hand)');
  await knex.raw('DROP VIEW product_stock');
  await knex.raw('DROP FUNCTION stock_take(int, int)');
  await knex.raw('DROP FUNCTION stock_allocate(int, int, int)');
  await knex.raw('DROP FUNCTION stock_set(int, int)');
  await knex.raw('DROP TRIGGER products_add_stock_slots ON products');
  await knex.raw('DROP FUNCTION products_add_stock_slots()');
  await knex.raw('ALTER TABLE reservations DROP COLUMN slot');
  await knex.raw('DROP TABLE stock_slots');
  await knex.raw('DROP FUNCTION stock_slot_count()');
}
