import type { Trx } from './db';

/**
 * The outbox: messages to people, written in the transaction of the change that caused them and
 * delivered after commit (line/delivery.ts). This module only stores rows; what a message may
 * contain is checked by the channel that renders it (line/delivery.ts addOutboxMessage checks LINE's limits).
 */
export interface NewOutboxMessage {
  recipient: string;
  /** The channel's message objects (LINE Messaging API messages), stored as JSON. */
  messages: unknown[];
  kind: string;
  /** Unique key for messages that must be sent once (e.g. `order:12:paid`); a second insert is ignored. */
  dedupeKey?: string;
  replyToken?: string | null;
  /** Until when a reply is tried at all. */
  replyDeadline?: Date | null;
  /** When the reply token reached us (the start of its validity). */
  replyTokenAt?: Date | null;
  /**
   * Written already claimed for this many seconds (status `sending`, first attempt) by the caller
   * that will deliver it right after COMMIT: no claiming round trip then. If that caller dies, the
   * claim runs out and a sweeper (or the re-run job, taking the claim over) delivers it.
   */
  claimSeconds?: number;
}

/** Inserts one outbox row. Returns its id, or null when dedupeKey was already used. */
export async function insertOutboxMessage(trx: Trx, m: NewOutboxMessage): Promise<number | null> {
  return (await insertOutboxRow(trx, m))?.id ?? null;
}

/** Inserts one outbox row; returns its id and retry key, or null when dedupeKey was already used. */
export async function insertOutboxRow(trx: Trx, m: NewOutboxMessage): Promise<{ id: number; retry_key: string } | null> {
  const claim =
    m.claimSeconds === undefined
      ? {}
      : { status: 'sending', attempts: 1, claimed_until: trx.raw(`now() + make_interval(secs => ?)`, [m.claimSeconds]) };
  const rows = await trx('outbox_messages')
    .insert({
      ...claim,
      dedupe_key: m.dedupeKey ?? null,
      kind: m.kind,
      recipient: m.recipient,
      reply_token: m.replyToken ?? null,
      reply_deadline: m.replyDeadline ?? null,
      reply_token_at: m.replyTokenAt ?? null,
      messages: JSON.stringify(m.messages),
    })
    .onConflict('dedupe_key')
    .ignore()
    .returning(['id', 'retry_key']);
  return rows[0] ?? null;
}
