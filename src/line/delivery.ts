import type { messagingApi } from '@line/bot-sdk';
import type { Db, Trx } from '../data/db';
import { insertOutboxMessage, insertOutboxRow, NewOutboxMessage } from '../data/outbox';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';
import type { LineApi } from './line-client';
import { checkMessages } from './message-limits';

/**
 * The one way the bot talks to people. Messages are written to outbox_messages inside the
 * transaction that caused them and delivered after commit:
 * - a reply while the event's reply token is fresh (free, no quota), otherwise a push;
 * - a reply whose answer was lost (timeout, 5xx) is tried again as a reply while the token is
 *   fresh: LINE delivers it then, or refuses the token as used, which means the first one was
 *   delivered (reply takes no retry key; only after the token's minute may a push duplicate it);
 * - every push carries the row's retry key, so a retried push is accepted at most once (409 = done);
 * - 429 / 5xx / timeouts retry with backoff (the caller's job system), other 4xx are recorded
 *   as undeliverable and never retried.
 */

/** An outbox row whose messages are LINE Messaging API messages. */
export interface NewMessage extends NewOutboxMessage {
  messages: messagingApi.Message[];
}

/**
 * LINE promises a reply token for "one minute" and community measurements saw about 30 s: only
 * this soon after we got it does a refusal of our own retried reply mean "already used by us".
 */
export const REPLY_TOKEN_SURELY_VALID_MS = 20_000;

export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
}

/**
 * Writes LINE messages to the outbox in the caller's transaction, after checking them against
 * LINE's limits (a message LINE would refuse must fail the change, not its delivery).
 * Returns null if dedupeKey was already used.
 */
export async function addOutboxMessage(trx: Trx, m: NewMessage): Promise<number | null> {
  const problems = checkMessages(m.messages);
  if (problems.length) throw new InvalidMessageError(`message breaks LINE limits: ${problems.join('; ')}`);
  return insertOutboxMessage(trx, m);
}

/** An outbox row as a delivery attempt holds it (claimed: status `sending`). */
export interface ClaimedMessage {
  id: number;
  recipient: string;
  reply_token: string | null;
  reply_deadline: Date | null;
  reply_token_at: Date | null;
  reply_unclear: boolean;
  messages: messagingApi.Message[];
  retry_key: string;
  attempts: number;
  kind: string;
  /** Whether the recipient still follows us (null: no such user row). */
  following: boolean | null;
}

/**
 * Writes an event's reply already claimed by the caller, who delivers it with deliverClaimed()
 * right after COMMIT (one round trip less than claiming it then). Null if the reply exists.
 * The recipient must be a follower known in this transaction (the event touched its row).
 */
export async function addClaimedReply(trx: Trx, m: NewMessage, claimSeconds: number): Promise<ClaimedMessage | null> {
  const problems = checkMessages(m.messages);
  if (problems.length) throw new InvalidMessageError(`message breaks LINE limits: ${problems.join('; ')}`);
  const row = await insertOutboxRow(trx, { ...m, claimSeconds });
  if (!row) return null;
  return {
    id: row.id,
    recipient: m.recipient,
    reply_token: m.replyToken ?? null,
    reply_deadline: m.replyDeadline ?? null,
    reply_token_at: m.replyTokenAt ?? null,
    reply_unclear: false,
    messages: m.messages,
    retry_key: row.retry_key,
    attempts: 1,
    kind: m.kind,
    following: true,
  };
}

export class RetryableDeliveryError extends Error {
  override readonly name = 'RetryableDeliveryError';
}

/**
 * LINE refused the send for its per-second rate limit: nothing was delivered, the row is pending
 * again, and the delivery queue should pause this long (the job's attempt is not used up).
 */
export class RateLimitedDelivery extends Error {
  override readonly name = 'RateLimitedDelivery';
  constructor(readonly waitMs: number) {
    super(`LINE rate limit: wait ${waitMs} ms`);
  }
}

/** No Retry-After from LINE (it documents none): its buckets refill continuously, so a short pause. */
const RATE_LIMIT_PAUSE_MS = 250;

export type DeliveryResult = 'sent' | 'skipped' | 'undeliverable';

export interface DeliverOptions {
  /**
   * The caller knows the run that claimed this message is gone (its job lost its lock and was
   * moved back to the queue): take the claim over now instead of waiting for it to time out.
   */
  takeOverClaim?: boolean;
}

/** The outbox dedupe key of the reply to a webhook event (one reply per event). */
export const eventReplyKey = (webhookEventId: string): string => `event:${webhookEventId}:reply`;

export class Delivery {
  constructor(
    private readonly db: Db,
    private readonly line: LineApi,
    private readonly log: Logger,
    private readonly claimSeconds = 60,
    private readonly metrics: Metrics | null = null,
  ) {}

  /** The event's reply if it is not delivered yet (pending, or claimed by an attempt that may have died). */
  async undeliveredEventReply(webhookEventId: string): Promise<number | null> {
    const row = await this.db('outbox_messages').where({ dedupe_key: eventReplyKey(webhookEventId) }).whereIn('status', ['pending', 'sending']).first('id');
    return row?.id ?? null;
  }

  /**
   * Delivers one outbox message. Throws RetryableDeliveryError when trying again later can help;
   * on the final attempt the message is marked failed instead.
   */
  async deliver(id: number, finalAttempt = false, opts: DeliverOptions = {}): Promise<DeliveryResult> {
    const claimed = await this.db('outbox_messages')
      .where({ id })
      .andWhere((q) => {
        q.where('status', 'pending');
        if (opts.takeOverClaim) q.orWhere('status', 'sending');
        else q.orWhere((q2) => q2.where('status', 'sending').andWhere('claimed_until', '<', this.db.fn.now()));
      })
      .update({
        status: 'sending',
        attempts: this.db.raw('attempts + 1'),
        claimed_until: this.db.raw(`now() + interval '${this.claimSeconds} seconds'`),
        // Still 'sending' means the last attempt died midway (an attempt that ends records its
        // outcome): whether its reply reached LINE is unknown, exactly as after a lost answer.
        reply_unclear: this.db.raw("reply_unclear OR (status = 'sending' AND reply_token IS NOT NULL)"),
      })
      .returning([
        'id', 'recipient', 'reply_token', 'reply_deadline', 'reply_token_at', 'reply_unclear', 'messages', 'retry_key', 'attempts', 'kind',
        // Whether the recipient still follows us, read in the same round trip (null: no such user row).
        this.db.raw('(SELECT following FROM line_users WHERE user_id = outbox_messages.recipient) AS following'),
      ]);
    const row = claimed[0] as ClaimedMessage | undefined;
    if (!row) return 'skipped';
    return this.send(row, finalAttempt);
  }

  /** Delivers a message its caller claimed when writing it (addClaimedReply). */
  deliverClaimed(row: ClaimedMessage): Promise<DeliveryResult> {
    return this.send(row, false);
  }

  get claimDurationSeconds(): number {
    return this.claimSeconds;
  }

  private async send(row: ClaimedMessage, finalAttempt: boolean): Promise<DeliveryResult> {
    if (row.following === false) {
      await this.finish(row.id, 'undeliverable', { last_error: 'recipient unfollowed the account' });
      return 'undeliverable';
    }

    // A reply while the token is fresh: on the first attempt, and again after a reply whose answer was lost.
    const fresh = row.reply_token !== null && row.reply_deadline !== null && row.reply_deadline.getTime() > Date.now();
    if (fresh && (row.attempts === 1 || row.reply_unclear)) {
      const r = await this.line.reply(row.reply_token!, row.messages);
      if (r.ok) {
        await this.finish(row.id, 'sent', { delivered_via: 'reply', line_request_id: r.requestId, last_status: 200 });
        return 'sent';
      }
      const surelyValid = row.reply_token_at !== null && Date.now() < row.reply_token_at.getTime() + REPLY_TOKEN_SURELY_VALID_MS;
      if (r.invalidReplyToken && row.reply_unclear && surelyValid) {
        // Nobody but us holds this token, and it cannot have expired yet: our earlier reply used it.
        await this.finish(row.id, 'sent', { delivered_via: 'reply', last_status: r.status, last_error: 'reply token already used by the earlier attempt' });
        return 'sent';
      }
      if (r.invalidReplyToken && row.reply_unclear) {
        this.log.warn({ outboxId: row.id }, 'reply token refused after an unclear reply, too late to tell use from expiry: pushing (may repeat it)');
      }
      if (!r.invalidReplyToken) {
        if (r.retryable && !r.rateLimited) await this.db('outbox_messages').where({ id: row.id }).update({ reply_unclear: true });
        if (r.rateLimited) return this.rateLimited(row.id, r.retryAfterMs, true);
        return this.failed(row.id, r.status, r.message, r.retryable, finalAttempt);
      }
      this.log.info({ outboxId: row.id }, 'reply token refused; falling back to push');
    }

    const p = await this.line.push(row.recipient, row.messages, row.retry_key);
    if (p.ok) {
      await this.finish(row.id, 'sent', { delivered_via: 'push', line_request_id: p.requestId, last_status: p.duplicate ? 409 : 200 });
      return 'sent';
    }
    if (p.rateLimited) return this.rateLimited(row.id, p.retryAfterMs, false);
    return this.failed(row.id, p.status, p.message, p.retryable, finalAttempt);
  }

  /** Back to pending, untouched by this try (a refused reply may be tried as a reply again). */
  private async rateLimited(id: number, retryAfterMs: number | null, wasReply: boolean): Promise<never> {
    this.metrics?.deliveries.inc({ via: wasReply ? 'reply' : 'push', result: 'rate-limited', status: '429' });
    await this.db('outbox_messages')
      .where({ id })
      .update({ status: 'pending', claimed_until: null, attempts: this.db.raw('attempts - 1'), last_status: 429, last_error: 'rate limited' });
    throw new RateLimitedDelivery(retryAfterMs ?? RATE_LIMIT_PAUSE_MS);
  }

  private async failed(id: number, status: number | null, message: string, retryable: boolean, finalAttempt: boolean): Promise<DeliveryResult> {
    if (retryable && !finalAttempt) {
      this.metrics?.deliveries.inc({ via: 'none', result: 'retry', status: String(status ?? 'network') });
      await this.db('outbox_messages').where({ id }).update({ status: 'pending', claimed_until: null, last_status: status, last_error: message });
      throw new RetryableDeliveryError(`delivery ${id} failed (${status ?? 'network'}): ${message}`);
    }
    await this.finish(id, retryable ? 'failed' : 'undeliverable', { last_status: status, last_error: message });
    this.log.error({ outboxId: id, status, message }, 'message not delivered');
    return 'undeliverable';
  }

  private async finish(id: number, status: 'sent' | 'undeliverable' | 'failed', extra: Record<string, unknown>): Promise<void> {
    this.metrics?.deliveries.inc({ via: String(extra.delivered_via ?? 'none'), result: status, status: String(extra.last_status ?? 'none') });
    await this.db('outbox_messages')
      .where({ id })
      .update({ status, claimed_until: null, ...(status === 'sent' ? { sent_at: this.db.fn.now() } : {}), ...extra });
  }
}
