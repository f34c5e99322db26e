import type { Knex } from 'knex';

/**
 * One ledger for member points and wallet money.
 *
 * - `member_accounts`: one row per LINE user and kind (`points`, `wallet`) holding the balance,
 *   which can never go below 0 (CHECK), whatever the application does.
 * - `member_ledger`: append-only entries (a trigger refuses UPDATE and DELETE): the signed amount,
 *   the balance after it, and a source naming the business change that caused it (`order:12:earn`,
 *   `topup:34`, `pos:<device>:<txn_no>` …), unique per account: a replayed callback, a double tap or
 *   a journal uploaded twice finds its source used and changes nothing.
 * - `ledger_post()`: one entry in one round trip, for the hot path (a wallet paying): a conditional
 *   UPDATE of the account (`balance + amount >= 0`, so a debit that would overdraw changes nothing)
 *   that locks the row until the caller commits, then the entry. Concurrent posts to one account
 *   queue on that row lock and each re-checks the balance it finds (READ COMMITTED re-evaluates the
 *   WHERE on the newest row), so entries of one account get ascending ids in commit order and each
 *   balance_after is the running sum (checked by `npm run check:invariants`).
 *
 * No foreign key from accounts to line_users: a store device may name a member by userId, and the
 * accounts are created on first use; the application checks who exists.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('member_accounts', (t) => {
    t.bigIncrements('id');
    t.text('line_user_id').notNullable();
    t.text('kind').notNullable();
    t.integer('balance').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['line_user_id', 'kind']);
  });
  await knex.raw("ALTER TABLE member_accounts ADD CONSTRAINT member_accounts_kind_valid CHECK (kind IN ('points', 'wallet'))");
  await knex.raw('ALTER TABLE member_accounts ADD CONSTRAINT member_accounts_balance_nonneg CHECK (balance >= 0)');

  await knex.schema.createTable('member_ledger', (t) => {
    t.bigIncrements('id');
    t.bigInteger('account_id').notNullable().references('member_accounts.id');
    /** earn, redeem, redeem-return, clawback, topup, pay, refund, charge, pos, … */
    t.text('kind').notNullable();
    /** Signed: credit positive, debit negative (points, or integer TWD for the wallet). */
    t.integer('amount').notNullable();
    t.integer('balance_after').notNullable();
    /** What a take-back (points clawed back after a refund) could not take because the points were spent. */
    t.integer('shortfall').notNullable().defaultTo(0);
    t.text('source').notNullable();
    t.jsonb('details');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['account_id', 'source']);
    t.index(['account_id', 'created_at']);
  });
  await knex.raw('ALTER TABLE member_ledger ADD CONSTRAINT member_ledger_balance_nonneg CHECK (balance_after >= 0)');
  await knex.raw('ALTER TABLE member_ledger ADD CONSTRAINT member_ledger_shortfall_nonneg CHECK (shortfall >= 0)');
  // A zero entry only records a shortfall (nothing left to take back).
  await knex.raw('ALTER TABLE member_ledger ADD CONSTRAINT member_ledger_amount_nonzero CHECK (amount <> 0 OR shortfall > 0)');
  await knex.raw("ALTER TABLE member_ledger ADD CONSTRAINT member_ledger_source_shape CHECK (source ~ '^[a-z][a-z-]*:[A-Za-z0-9:_-]{1,150}$')");
  await knex.raw(`
    CREATE FUNCTION member_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'member_ledger is append-only' USING ERRCODE = 'integrity_constraint_violation';
    END $$`);
  await knex.raw(`
    CREATE TRIGGER member_ledger_append_only BEFORE UPDATE OR DELETE ON member_ledger
      FOR EACH ROW EXECUTE FUNCTION member_ledger_append_only()`);

  // outcome: posted | duplicate (the source was used: nothing changed) | insufficient (would go below 0: nothing changed).
  await knex.raw(`
    CREATE FUNCTION ledger_post(p_user text, p_account_kind text, p_entry_kind text, p_amount int, p_source text,
                                p_details jsonb DEFAULT NULL, p_shortfall int DEFAULT 0)
    RETURNS TABLE (outcome text, account_id bigint, balance int, entry_id bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      v_account bigint;
      v_balance int;
      v_entry bigint;
    BEGIN
      UPDATE member_accounts a SET balance = a.balance + p_amount, updated_at = now()
       WHERE a.line_user_id = p_user AND a.kind = p_account_kind AND a.balance + p_amount >= 0
       RETURNING a.id, a.balance INTO v_account, v_balance;
      IF NOT FOUND THEN
        SELECT a.id, a.balance INTO v_account, v_balance FROM member_accounts a WHERE a.line_user_id = p_user AND a.kind = p_account_kind;
        IF FOUND THEN
          IF EXISTS (SELECT 1 FROM member_ledger e WHERE e.account_id = v_account AND e.source = p_source) THEN
            RETURN QUERY SELECT 'duplicate'::text, v_account, v_balance, NULL::bigint;
          ELSE
            RETURN QUERY SELECT 'insufficient'::text, v_account, v_balance, NULL::bigint;
          END IF;
          RETURN;
        END IF;
        IF p_amount < 0 THEN
          RETURN QUERY SELECT 'insufficient'::text, NULL::bigint, 0, NULL::bigint;
          RETURN;
        END IF;
        INSERT INTO member_accounts (line_user_id, kind) VALUES (p_user, p_account_kind) ON CONFLICT DO NOTHING;
        UPDATE member_accounts a SET balance = a.balance + p_amount, updated_at = now()
         WHERE a.line_user_id = p_user AND a.kind = p_account_kind
         RETURNING a.id, a.balance INTO v_account, v_balance;
      END IF;
      INSERT INTO member_ledger (account_id, kind, amount, balance_after, shortfall, source, details)
        VALUES (v_account, p_entry_kind, p_amount, v_balance, p_shortfall, p_source, p_details)
        ON CONFLICT ON CONSTRAINT member_ledger_account_id_source_unique DO NOTHING
        RETURNING id INTO v_entry;
      IF v_entry IS NULL THEN
        -- Posted before (a replay that raced past the first's commit): undo our change; the row is ours.
        UPDATE member_accounts a SET balance = a.balance - p_amount WHERE a.id = v_account RETURNING a.balance INTO v_balance;
        RETURN QUERY SELECT 'duplicate'::text, v_account, v_balance, NULL::bigint;
        RETURN;
      END IF;
      RETURN QUERY SELECT 'posted'::text, v_account, v_balance, v_entry;
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION ledger_post(text, text, text, int, text, jsonb, int)');
  await knex.schema.dropTable('member_ledger');
  await knex.raw('DROP FUNCTION member_ledger_append_only()');
  await knex.schema.dropTable('member_accounts');
}
