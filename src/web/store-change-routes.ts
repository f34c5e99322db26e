import express, { Request, Response, Router } from 'express';
import type { Config } from '../config';
import type { StoreChange, StoreChangeState } from '../domain/store-change';
import type { Logger } from '../logger';
import { STORE_CHANGE } from '../texts';
import { sameOrigin } from './admin/security';
import { sendShopperPage } from './delivery-page';
import { storeChangeMessagePage, storeChangeOpenPage } from './store-change-page';

/**
 * The shopper's store-change link (GET/POST /store-change/:ref), pushed when a shipped parcel's
 * pickup store closed. The link's token is the credential; its POST (open the map) also carries the
 * link's CSRF token and must come from our origin. The map's reply comes to checkout's
 * /logistics/ecpay/map-reply (delivery-routes.ts), which hands store-change tokens to
 * `storeChangeReply` below.
 */
export function storeChangeRouter(deps: { config: Config; storeChange: StoreChange; log: Logger }): Router {
  const { config, storeChange, log } = deps;
  const r = Router();
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 10 });
  const publicOrigin = new URL(config.publicBaseUrl).origin;
  const logisticsOrigin = config.ecpayLogistics ? new URL(config.ecpayLogistics.apiBaseUrl).origin : null;

  r.get('/store-change/:ref', async (req: Request, res: Response) => {
    try {
      const state = await storeChange.page(String(req.params.ref));
      if (state.kind === 'open') {
        return sendPage(res, 200, storeChangeOpenPage({ ref: state.ref, csrf: state.csrf, orderNo: state.order.order_no, closedStore: state.closedStore }));
      }
      return sendState(res, state);
    } catch (err) {
      return failed(res, log, err, 'store-change page failed');
    }
  });

  r.post('/store-change/:ref', form, async (req: Request, res: Response) => {
    const ref = String(req.params.ref);
    const sent = typeof req.body?._csrf === 'string' ? (req.body._csrf as string) : '';
    try {
      if (!sameOrigin(req, publicOrigin) || !(await storeChange.csrfValid(ref, sent))) {
        return sendPage(res, 403, storeChangeMessagePage({ title: STORE_CHANGE.notFoundTitle, body: STORE_CHANGE.notFoundBody, tone: 'bad' }));
      }
      const out = await storeChange.openMap(ref);
      if (out.kind === 'map') return sendPage(res, 200, out.html, logisticsOrigin ? [logisticsOrigin] : ["'self'"]);
      return sendState(res, out);
    } catch (err) {
      return failed(res, log, err, 'store-change map failed');
    }
  });

  return r;
}

/** The map reply of a store-change link, as a page; false when the reply is not a store-change one. */
export async function storeChangeReply(storeChange: StoreChange, body: unknown, res: Response, log: Logger): Promise<boolean> {
  const out = await storeChange.mapReply(body);
  switch (out.kind) {
    case 'not-mine':
      return false;
    case 'rejected':
      log.warn({ reason: out.reason }, 'store-change map reply rejected');
      sendPage(res, 400, storeChangeMessagePage({ title: STORE_CHANGE.badReplyTitle, body: STORE_CHANGE.badReplyBody, tone: 'bad', retryRef: out.ref }));
      return true;
    case 'updated':
      sendPage(res, 200, storeChangeMessagePage({ title: STORE_CHANGE.updatedTitle, body: STORE_CHANGE.updatedBody, tone: 'ok', store: { label: STORE_CHANGE.currentStore, view: out.store } }));
      return true;
    case 'failed': {
      const text = out.why === 'refused' ? STORE_CHANGE.refusedBody : out.why === 'busy' ? STORE_CHANGE.busyBody : STORE_CHANGE.unavailableBody;
      sendPage(res, out.why === 'busy' ? 409 : 502, storeChangeMessagePage({ title: STORE_CHANGE.failedTitle, body: text, tone: 'bad', retryRef: out.ref }));
      return true;
    }
    default:
      sendState(res, out);
      return true;
  }
}

function sendState(res: Response, state: Exclude<StoreChangeState, { kind: 'open' }>): void {
  switch (state.kind) {
    case 'not-found':
      return sendPage(res, 404, storeChangeMessagePage({ title: STORE_CHANGE.notFoundTitle, body: STORE_CHANGE.notFoundBody, tone: 'bad' }));
    case 'done':
      return sendPage(res, 200, storeChangeMessagePage({ title: STORE_CHANGE.doneTitle, body: STORE_CHANGE.doneBody, tone: 'ok', store: { label: STORE_CHANGE.currentStore, view: state.store } }));
    case 'expired':
      return sendPage(res, 410, storeChangeMessagePage({ title: STORE_CHANGE.expiredTitle, body: STORE_CHANGE.expiredBody, tone: 'bad' }));
    case 'not-needed':
      return sendPage(res, 410, storeChangeMessagePage({ title: STORE_CHANGE.notNeededTitle, body: STORE_CHANGE.notNeededBody, tone: 'bad' }));
  }
}

const sendPage = sendShopperPage;

function failed(res: Response, log: Logger, err: unknown, what: string): void {
  log.error({ err: err instanceof Error ? err.message : String(err) }, what);
  sendPage(res, 500, storeChangeMessagePage({ title: STORE_CHANGE.failedTitle, body: STORE_CHANGE.unavailableBody, tone: 'bad' }));
}
