import express, { NextFunction, Request, Response, Router } from 'express';
import { JSONParseError, middleware, SignatureValidationFailed, webhook } from '@line/bot-sdk';
import type { Db } from '../data/db';
import { InboxWriter, isDataError } from '../data/inbox-writer';
import { storableJson } from '../data/jsonb';
import type { Queues } from '../jobs/queues';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics';

/**
 * LINE counts a webhook as failed when it gets no answer within 2 s. A database that is slow to
 * take the events (locked table, exhausted pool, failover) gets 503 before that, so LINE's
 * redelivery tries again; an insert that still lands later is harmless (unique webhookEventId).
 */
export const WEBHOOK_STORE_BUDGET_MS = 1500;

class StoreTimeout extends Error {}

function withinBudget<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreTimeout(`not stored within ${ms} ms`)), ms);
  });
  p.catch(() => undefined); // a late failure after the 503 is already answered for
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * POST /webhook/line: verify the signature on the raw body (SDK middleware, this route only),
 * store every event in the PostgreSQL inbox (unique on webhookEventId; concurrent requests share
 * one INSERT, see InboxWriter), answer 200 once committed, then enqueue. If Redis is away the events wait in the inbox for the sweeper; only a database that
 * cannot take the events makes us answer 503 (so LINE's redelivery, when enabled, tries again).
 */
export function lineWebhookRouter(deps: { db: Db; queues: Queues; channelSecret: string; log: Logger; metrics?: Metrics; inbox?: InboxWriter }): Router {
  const router = Router();
  // Concurrent requests share INSERTs (group commit); the events of each committed INSERT are
  // enqueued in one call after their requests were answered. Redis away: the sweeper enqueues them.
  const inbox =
    deps.inbox ??
    new InboxWriter(deps.db, {
      onStored: (ids) => {
        deps.metrics?.webhookEvents.inc(ids.length);
        deps.metrics?.inboxInserts.inc();
        void deps.queues.tryEnqueue('line events', () => deps.queues.enqueueEvents(ids));
      },
    });
  router.post(
    '/webhook/line',
    express.raw({ type: () => true, limit: '2mb' }),
    middleware({ channelSecret: deps.channelSecret }),
    async (req: Request, res: Response) => {
      const body = req.body as Partial<webhook.CallbackRequest>;
      if (!body || typeof body !== 'object' || !Array.isArray(body.events)) {
        res.status(400).json({ message: 'body must be a webhook callback with an events array' });
        return;
      }
      const events = body.events.filter(
        (e): e is webhook.Event => !!e && typeof e === 'object' && typeof (e as webhook.Event).webhookEventId === 'string',
      );
      if (events.length !== body.events.length) {
        res.status(400).json({ message: 'every event needs a webhookEventId' });
        return;
      }
      if (events.length === 0) {
        res.status(200).json({});
        return;
      }
      // Whatever LINE signed is stored: U+0000 and lone surrogates become U+FFFD in the jsonb
      // payload (which cannot hold them), and the event as sent is kept beside it.
      const rowsToStore = events.map((original) => {
        const { value: e, changed } = storableJson(original);
        return {
          webhook_event_id: e.webhookEventId,
          event_type: String(e.type),
          source_user_id: e.source && 'userId' in e.source ? (e.source.userId ?? null) : null,
          payload: JSON.stringify(e),
          // JSON.stringify writes those characters as \u escapes: plain ASCII, fine in a text column.
          payload_original: changed ? JSON.stringify(original) : null,
        };
      });
      try {
        await withinBudget(inbox.store(rowsToStore), WEBHOOK_STORE_BUDGET_MS);
      } catch (err) {
        // A refused value (SQLSTATE class 22) is a bug of ours, not an outage: say which it is.
        const code = (err as { code?: unknown })?.code;
        const refused = isDataError(err);
        deps.log.error(
          { err: err instanceof Error ? err.message : String(err), code, timeout: err instanceof StoreTimeout },
          refused ? 'webhook events refused by PostgreSQL as invalid data' : 'webhook events could not be stored: PostgreSQL unreachable or too slow',
        );
        res.status(503).json({ message: 'temporarily unavailable' });
        return;
      }
      res.status(200).json({});
    },
  );
  return router;
}

/** Maps the SDK's errors and body-parser errors to the statuses LINE (and attackers) get. */
export function webhookErrorHandler(log: Logger) {
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) return next(err);
    if (err instanceof SignatureValidationFailed) {
      log.warn({ path: req.path }, 'webhook signature rejected');
      res.status(401).json({ message: 'invalid signature' });
      return;
    }
    if (err instanceof JSONParseError) {
      res.status(400).json({ message: 'malformed JSON' });
      return;
    }
    const status = (err as { status?: number; statusCode?: number })?.status ?? (err as { statusCode?: number })?.statusCode;
    if (status === 413) {
      res.status(413).json({ message: 'payload too large' });
      return;
    }
    if (status === 400) {
      res.status(400).json({ message: 'bad request' });
      return;
    }
    next(err);
  };
}
