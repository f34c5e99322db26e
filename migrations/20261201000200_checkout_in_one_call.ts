import type { Knex } from 'knex';

/**
 * Checkout as one database call, and stock taken only while the checkout commits.
 *
 * 1. `checkout_cart(user, cart_version, hold_ms)` does a checkout's work in one round trip with
 *    plans PostgreSQL caches per connection: lock the cart, read its lines with their products and
 *    pick stock slots for each line (`stock_allocate`, as of that statement), and (only if every
 *    product is active and has the units) write the order, its lines, their held reservations (one
 *    per slot used) and the history row, and close the cart.
 *
 * 2. Held reservations take their units in a deferred constraint trigger, i.e. during COMMIT:
 *    `reserved += qty` on the reservation's slot if `on_hand - reserved >= qty` there and the product
 *    is still active, else the transaction fails with SQLSTATE LS409 (the caller retries, and the
 *    retry's allocation sees what the other checkout took). A slot row — what the shoppers of a
 *    popular product contend for — is therefore locked only between that UPDATE and the end of
 *    COMMIT, whatever else the transaction does (the bot writes its reply and marks the webhook
 *    event processed in the same transaction). Deferred row triggers fire in the order their rows
 *    were inserted, and checkout inserts the reservations by ascending (product_id, slot), so the
 *    lock order stays fixed (no deadlocks).
 *
 * 3. order_lines.product_id and reservations.product_id lose their foreign keys. Each FK check took
 *    a KEY SHARE lock on the product row, which every concurrent checkout of that product shares:
 *    a MultiXact per checkout (5-10% of hot-product throughput, measured with `npm run bench`).
 *    Nothing is lost: order lines snapshot SKU, name and price; a held reservation's slot row is
 *    updated (locked, proven to exist, and it cascades from its product) by its own transaction;
 *    and a product that any order line or reservation names cannot be deleted (trigger below;
 *    products are retired with active = false). `npm run check:invariants` also reports any line
 *    or reservation naming a missing product.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE order_lines DROP CONSTRAINT order_lines_product_id_foreign');
  await knex.raw('ALTER TABLE reservations DROP CONSTRAINT reservations_product_id_foreign');

  await knex.raw(`
    CREATE FUNCTION products_refuse_referenced_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      -- A checkout that is committing holds one of these locks and its rows are not visible yet:
      -- wait for it, so that the check below sees its order lines.
      PERFORM 1 FROM stock_slots WHERE product_id = OLD.id ORDER BY slot FOR UPDATE;
      IF EXISTS (SELECT 1 FROM order_lines WHERE product_id = OLD.id)
         OR EXISTS (SELECT 1 FROM reservations WHERE product_id = OLD.id) THEN
        RAISE EXCEPTION 'product % is named by orders; set active = false instead of deleting it', OLD.id
          USING ERRCODE = 'foreign_key_violation';
      END IF;
      RETURN OLD;
    END $$`);
  await knex.raw(`
    CREATE TRIGGER products_refuse_referenced_delete BEFORE DELETE ON products
      FOR EACH ROW EXECUTE FUNCTION products_refuse_referenced_delete()`);

  await knex.raw(`
    CREATE FUNCTION reserve_stock_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM products WHERE id = NEW.product_id AND active) THEN
        UPDATE stock_slots SET reserved = reserved + NEW.qty
         WHERE product_id = NEW.product_id AND slot = NEW.slot AND on_hand - reserved >= NEW.qty;
        IF FOUND THEN
          RETURN NULL;
        END IF;
      END IF;
      RAISE EXCEPTION 'not enough stock for product %', NEW.product_id
        USING ERRCODE = 'LS409', DETAIL = NEW.product_id::text;
    END $$`);
  await knex.raw(`
    CREATE CONSTRAINT TRIGGER reservations_reserve_stock AFTER INSERT ON reservations
      DEFERRABLE INITIALLY DEFERRED
      FOR EACH ROW WHEN (NEW.status = 'held') EXECUTE FUNCTION reserve_stock_at_commit()`);

  // Order number: 'L' + Taipei date + the global sequence (starts at 1001). Never lpad it to a fixed
  // width: lpad truncates, so 10000..10009 would all become 1000 and collide.
  await knex.raw(`
    CREATE FUNCTION checkout_cart(p_user text, p_cart_version int, p_hold_ms bigint,
      OUT kind text, OUT locked_cart_id int, OUT locked_cart_version int, OUT ord orders, OUT lines json, OUT cart json)
    LANGUAGE plpgsql AS $$
    DECLARE
      v_order_id bigint;
    BEGIN
      SELECT c.id, c.version INTO locked_cart_id, locked_cart_version
        FROM carts c WHERE c.line_user_id = p_user FOR UPDATE;
      IF NOT FOUND THEN
        kind := 'empty';
        RETURN;
      END IF;
      IF p_cart_version IS NOT NULL AND p_cart_version <> locked_cart_version THEN
        kind := 'stale-cart';
        RETURN;
      END IF;

      -- The cart row is locked, so this statement's snapshot sees the cart's latest lines.
      WITH cl AS (
        SELECT product_id, qty FROM cart_lines WHERE cart_id = locked_cart_id
      ), alloc AS (
        SELECT cl.product_id, a.slot, a.qty
          FROM cl, LATERAL stock_allocate(cl.product_id, cl.qty, locked_cart_id) a
      ), src AS (
        SELECT cl.product_id, cl.qty, p.sku, p.name, p.price, p.active,
               coalesce((SELECT sum(alloc.qty) FROM alloc WHERE alloc.product_id = cl.product_id), 0) = cl.qty AS enough
          FROM cl JOIN products p ON p.id = cl.product_id
      ), ok AS (
        SELECT coalesce(bool_and(active AND enough), false) AS ok,
               sum(price * qty)::int AS total, sum(qty)::int AS items
          FROM src
      ), o AS (
        INSERT INTO orders (order_no, line_user_id, status, total, item_count, hold_expires_at, cart_id, cart_version)
        SELECT 'L' || to_char(now() AT TIME ZONE 'Asia/Taipei', 'YYMMDD') || nextval('order_no_seq'),
               p_user, 'pending_payment', ok.total, ok.items, now() + p_hold_ms * interval '1 millisecond',
               locked_cart_id, locked_cart_version
          FROM ok WHERE ok.ok
        RETURNING id, hold_expires_at
      ), l AS (
        INSERT INTO order_lines (order_id, product_id, sku, name, unit_price, qty, line_total)
        SELECT o.id, src.product_id, src.sku, src.name, src.price, src.qty, src.price * src.qty
          FROM o, src ORDER BY src.product_id
        RETURNING *
      ), r AS (
        INSERT INTO reservations (order_id, order_line_id, product_id, slot, qty, status, expires_at)
        SELECT l.order_id, l.id, l.product_id, alloc.slot, alloc.qty, 'held', o.hold_expires_at
          FROM l JOIN alloc ON alloc.product_id = l.product_id, o
         ORDER BY l.product_id, alloc.slot
      ), e AS (
        INSERT INTO order_events (order_id, from_status, to_status, reason, actor)
        SELECT o.id, NULL, 'pending_payment', 'checkout', 'shopper' FROM o
      ), d AS (
        DELETE FROM cart_lines x WHERE x.cart_id = locked_cart_id AND EXISTS (SELECT 1 FROM o)
      ), u AS (
        UPDATE carts x SET version = x.version + 1, updated_at = now()
         WHERE x.id = locked_cart_id AND EXISTS (SELECT 1 FROM o)
      )
      SELECT (SELECT o.id FROM o),
             (SELECT json_agg(l ORDER BY l.id) FROM l),
             (SELECT json_agg(json_build_object('product_id', product_id, 'name', name, 'active', active, 'enough', enough)
                              ORDER BY product_id) FROM src)
        INTO v_order_id, lines, cart;

      IF v_order_id IS NULL THEN
        kind := CASE WHEN cart IS NULL THEN 'empty' ELSE 'unavailable' END;
        RETURN;
      END IF;
      SELECT * INTO ord FROM orders WHERE id = v_order_id;
      kind := 'created';
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION checkout_cart(text, int, bigint)');
  await knex.raw('DROP TRIGGER reservations_reserve_stock ON reservations');
  await knex.raw('DROP FUNCTION reserve_stock_at_commit()');
  await knex.raw('DROP TRIGGER products_refuse_referenced_delete ON products');
  await knex.raw('DROP FUNCTION products_refuse_referenced_delete()');
  await knex.raw('ALTER TABLE reservations ADD CONSTRAINT reservations_product_id_foreign FOREIGN KEY (product_id) REFERENCES products (id)');
  await knex.raw('ALTER TABLE order_lines ADD CONSTRAINT order_lines_product_id_foreign FOREIGN KEY (product_id) REFERENCES products (id)');
}
