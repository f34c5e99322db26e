import type { messagingApi } from '@line/bot-sdk';
import type { Config } from '../config';
import type { Trx } from '../data/db';
import { addOutboxMessage } from '../line/delivery';
import type { AfterCommit } from '../line/bot';

/**
 * Pushes caused by state changes: written to the outbox in the same transaction, each under a
 * dedupe key naming the event it reports, so a replayed callback or a retried job pushes nothing new.
 */
export async function notifyShopper(
  trx: Trx,
  after: AfterCommit,
  userId: string,
  dedupeKey: string,
  messages: messagingApi.Message[],
): Promise<void> {
  const id = await addOutboxMessage(trx, { recipient: userId, messages, kind: 'notify-shopper', dedupeKey });
  if (id !== null) after.outboxIds.push(id);
}

export async function notifyOwners(
  trx: Trx,
  after: AfterCommit,
  config: Config,
  dedupeKey: string,
  messages: messagingApi.Message[],
): Promise<void> {
  for (const owner of config.ownerLineUserIds) {
    const id = await addOutboxMessage(trx, { recipient: owner, messages, kind: 'notify-owner', dedupeKey: `${dedupeKey}:${owner}` });
    if (id !== null) after.outboxIds.push(id);
  }
}
