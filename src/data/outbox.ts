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
}

/** Inserts one outbox row. Returns its id, or null when dedupeKey was already used. */
export async function insertOutboxMessage(trx: Trx, m: NewOutboxMessage): Promise<number | null> {
  const rows = await trx('outbox_messages')
    .insert({
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
    .returning('id');
  return rows[0]?.id ?? null;
}
