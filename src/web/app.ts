import express, { NextFunction, Request, Response } from 'express';
import type { Container } from '../container';
import { T } from '../texts';
import { lineWebhookRouter, webhookErrorHandler } from './line-webhook';
import { memberRouter } from './member-routes';
import { adminRouter } from './admin/routes';
import { mediaRouter } from './media-routes';
import { paymentRouter } from './payment-routes';
import { deliveryRouter } from './delivery-routes';
import { logisticsRouter } from './logistics-routes';
import { storeChangeRouter } from './store-change-routes';
import { requestMetrics } from './request-metrics';

/** The web process: webhook, bank callbacks, shopper pages, health. No business logic here. */
export function createApp(c: Container): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', true);

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/readyz', async (_req, res) => {
    const [pg, redis] = await Promise.all([
      c.db.raw('SELECT 1').then(() => true, () => false),
      c.redis.ping().then((p) => p === 'PONG', () => false),
    ]);
    res.status(pg && redis ? 200 : 503).json({ postgres: pg, redis });
  });

  app.get('/metrics', async (_req, res) => {
    res.type(c.metrics.registry.contentType).send(await c.metrics.registry.metrics());
  });
  app.use(requestMetrics(c.metrics));

  app.use(lineWebhookRouter({ db: c.db, queues: c.queues, channelSecret: c.config.line.channelSecret, log: c.log, metrics: c.metrics }));
  app.use(paymentRouter({ config: c.config, payments: c.payments, log: c.log }));
  app.use(deliveryRouter({ config: c.config, delivery: c.deliveryCheckout, storeChange: c.storeChange, log: c.log }));
  app.use(storeChangeRouter({ config: c.config, storeChange: c.storeChange, log: c.log }));
  app.use(logisticsRouter({ shipments: c.shipments, log: c.log }));
  app.use(memberRouter({ config: c.config, db: c.db, members: c.members, log: c.log }));
  app.use(mediaRouter(c.db));
  app.use(adminRouter(c));

  app.use((_req, res) => {
    res.status(404).json({ message: 'not found' });
  });
  app.use(webhookErrorHandler(c.log));
  // Last resort: a generic answer with a code, never err.message or a stack trace.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    c.log.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err), path: req.path }, 'unhandled error');
    const status = (err as { status?: number })?.status;
    if (status && status >= 400 && status < 500) {
      res.status(status).json({ message: 'bad request', code: 'BAD_REQUEST' });
      return;
    }
    res.status(500).json({ message: T.internalError('INTERNAL'), code: 'INTERNAL' });
  });
  return app;
}
