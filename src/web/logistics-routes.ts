import express, { Request, Response, Router } from 'express';
import type { Shipments } from '../domain/shipments';
import type { Logger } from '../logger';

/**
 * ECPay logistics callbacks (specs/ecpay-logistics.md §7): shipment status notifications and
 * 7-ELEVEN C2C store-change notices, both signed form posts to one URL (our ServerReplyURL).
 * Answered `1|OK` (text/plain, nothing else) once verified and recorded, a replay included;
 * a refused one (bad MAC, another merchant, a shipment we do not have) gets `0|…` with HTTP 400
 * and changes nothing but its rejected record.
 */
export function logisticsRouter(deps: { shipments: Shipments; log: Logger }): Router {
  const r = Router();
  const form = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 100 });
  r.post('/logistics/ecpay/notify', form, async (req: Request, res: Response) => {
    try {
      const out = await deps.shipments.receiveNotification(req.body ?? {});
      res.status(out.status).type('text/plain').send(out.text);
    } catch (err) {
      deps.log.error({ err: err instanceof Error ? err.message : String(err) }, 'logistics notification not recorded');
      res.status(503).type('text/plain').send('0|temporarily unavailable');
    }
  });
  return r;
}
