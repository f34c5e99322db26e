import express, { Request, Response, Router } from 'express';
import type { Config } from '../config';
import type { DeliveryCheckout, DeliveryDetails, DeliveryForm } from '../domain/delivery';
import type { StoreChange } from '../domain/store-change';
import type { Logger } from '../logger';
import { DELIVERY_FORM } from '../texts';
import { sameOrigin } from './admin/security';
import { closedBody, deliveryFormPage, deliveryMessagePage, sendShopperPage } from './delivery-page';
import { storeChangeReply } from './store-change-routes';

/**
 * The shopper's delivery details page and the ECPay store map's reply (CONTRACT: GET/POST
 * /delivery/:ref, POST /logistics/ecpay/map-reply). The link's token is the credential; every
 * POST of the page also carries the link's CSRF token and must come from our origin. The map's
 * reply is a cross-site browser POST (no cookies): its ExtraData (the link's map token) finds the
 * order, and every field is checked as user input (parseMapReply).
 */
export function deliveryRouter(deps: { config: Config; delivery: DeliveryCheckout; storeChange: StoreChange; log: Logger }): Router {
  const { config, delivery, storeChange, log } = deps;
  const r = Router();
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 30 });
  const publicOrigin = new URL(config.publicBaseUrl).origin;
  const logisticsOrigin = config.ecpayLogistics ? new URL(config.ecpayLogistics.apiBaseUrl).origin : null;

  const send = sendShopperPage;
  const closed = (res: Response, reason: string, details: DeliveryDetails | null = null) =>
    send(
      res,
      reason === 'not-found' ? 404 : 410,
      deliveryMessagePage(DELIVERY_FORM.closedTitle, closedBody[reason] ?? DELIVERY_FORM.notFoundBody, reason === 'order-paid' ? 'ok' : 'bad', details),
    );
  const failed = (res: Response, err: unknown, what: string) => {
    log.error({ err: err instanceof Error ? err.message : String(err) }, what);
    send(res, 500, deliveryMessagePage(DELIVERY_FORM.errorTitle, DELIVERY_FORM.errorBody, 'bad'));
  };

  r.get('/delivery/:ref', async (req: Request, res: Response) => {
    try {
      const state = await delivery.page(String(req.params.ref));
      if (state.kind === 'closed') return closed(res, state.reason, state.reason === 'order-paid' || state.reason === 'payment-started' ? (state.delivery ?? null) : null);
      return send(res, 200, deliveryFormPage(state, { saved: req.query.saved === '1' }));
    } catch (err) {
      return failed(res, err, 'delivery page failed');
    }
  });

  r.post('/delivery/:ref', form, async (req: Request, res: Response) => {
    const ref = String(req.params.ref);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const str = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : '');
    try {
      if (!sameOrigin(req, publicOrigin) || !(await delivery.csrfValid(ref, str('_csrf')))) {
        return send(res, 403, deliveryMessagePage(DELIVERY_FORM.forbiddenTitle, DELIVERY_FORM.forbiddenBody, 'bad'));
      }
      const f: DeliveryForm = { key: str('key'), name: str('name'), phone: str('phone'), zip: str('zip'), address: str('address') };
      if (str('op') === 'map') {
        const out = await delivery.openMap(ref, f);
        if (out.kind === 'closed') return closed(res, out.reason);
        if (out.kind === 'invalid') {
          if (out.state.kind === 'closed') return closed(res, out.state.reason);
          return send(res, 422, deliveryFormPage(out.state, { errors: out.errors }));
        }
        // Top-level page that posts the signed Express/map form to ECPay (never an iframe).
        return send(res, 200, out.html, logisticsOrigin ? [logisticsOrigin] : ["'self'"]);
      }
      const out = await delivery.submit(ref, f);
      if (out.kind === 'closed') return closed(res, out.reason);
      if (out.kind === 'invalid') {
        if (out.state.kind === 'closed') return closed(res, out.state.reason);
        return send(res, 422, deliveryFormPage(out.state, { errors: out.errors }));
      }
      return res.redirect(303, `/delivery/${encodeURIComponent(ref)}?saved=1`);
    } catch (err) {
      return failed(res, err, 'delivery form failed');
    }
  });

  // ECPay's store map sends the buyer's browser here with the chosen store (§5.3).
  r.post('/logistics/ecpay/map-reply', form, async (req: Request, res: Response) => {
    try {
      // A store-change link's map token (a shipped parcel whose store closed) is answered there.
      if (await storeChangeReply(storeChange, req.body ?? {}, res, log)) return;
      const out = await delivery.mapReply(req.body ?? {});
      if (out.kind === 'rejected') {
        log.warn({ reason: out.reason }, 'store map reply rejected');
        return send(res, 400, deliveryMessagePage(DELIVERY_FORM.badReplyTitle, DELIVERY_FORM.badReplyBody, 'bad'));
      }
      if (out.kind === 'closed') return closed(res, out.reason);
      return res.redirect(303, `/delivery/${encodeURIComponent(out.ref)}${out.complete ? '?saved=1' : ''}`);
    } catch (err) {
      return failed(res, err, 'store map reply failed');
    }
  });

  return r;
}
