import express, { Request, Response, Router } from 'express';
import type { Config } from '../config';
import type { PaymentService } from '../domain/payments';
import type { Logger } from '../logger';
import { pages } from './pages';

const PAY_TOKEN = /^[0-9A-Za-z]{16,100}$/;

const html = (res: Response, status: number, body: string) => res.status(status).type('text/html; charset=utf-8').send(body);

/**
 * Bank callbacks and the pages shoppers see in LINE's in-app browser. Callbacks are recorded
 * (deduplicated) before they are answered; results are confirmed with the bank by a job.
 */
export function paymentRouter(deps: { config: Config; payments: PaymentService; log: Logger }): Router {
  const { config, payments, log } = deps;
  const r = Router();
  const form = express.urlencoded({ extended: false, limit: '64kb' });
  const json = express.json({ limit: '64kb', type: () => true });

  // ---- SinoPac QPay ------------------------------------------------------------------------
  r.post('/payments/sinopac/notify', json, async (req: Request, res: Response) => {
    const sp = config.sinopac;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const shopNo = typeof body.ShopNo === 'string' ? body.ShopNo : '';
    const payToken = typeof body.PayToken === 'string' ? body.PayToken : '';
    if (!sp || shopNo !== sp.shopNo || !PAY_TOKEN.test(payToken)) {
      log.warn({ shopNo, tokenShape: PAY_TOKEN.test(payToken) }, 'SinoPac notification rejected');
      res.status(400).json({ Status: 'F' });
      return;
    }
    try {
      await payments.recordNotification({ provider: 'sinopac', dedupeKey: payToken, kind: 'backend', tradeNo: null, payload: { ShopNo: shopNo, PayToken: payToken } });
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'SinoPac notification not stored');
      res.status(503).json({ Status: 'F' });
      return;
    }
    res.json({ Status: 'S' });
  });

  r.post('/payments/sinopac/return', form, async (req: Request, res: Response) => {
    const sp = config.sinopac;
    const shopNo = String(req.body?.ShopNo ?? '');
    const payToken = String(req.body?.PayToken ?? '');
    if (!sp || shopNo !== sp.shopNo || !PAY_TOKEN.test(payToken)) return html(res, 400, pages.notFound());
    try {
      await payments.recordNotification({ provider: 'sinopac', dedupeKey: payToken, kind: 'return', tradeNo: null, payload: { ShopNo: shopNo, PayToken: payToken } });
      const state = await payments.sinopacReturnState(payToken);
      if (state.state === 'paid') return html(res, 200, pages.paid());
      if (state.state === 'failed') return html(res, 200, pages.failed(state.retryRef ? `${config.publicBaseUrl}/payments/retry/${state.retryRef}` : undefined));
      return html(res, 200, pages.processing());
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'SinoPac return page: bank query failed');
      return html(res, 200, pages.processing());
    }
  });

  // A failed card payment can be tried again from the result page: a fresh attempt, same method.
  r.get('/payments/retry/:ref', async (req: Request, res: Response) => {
    try {
      const out = await payments.retryCardPayment(String(req.params.ref));
      if (out.kind === 'redirect') return res.redirect(303, out.url);
      if (out.kind === 'paid') return html(res, 200, pages.alreadyPaid());
      if (out.kind === 'expired') return html(res, 410, pages.expired());
      if (out.kind === 'failed') return html(res, 502, pages.failed());
      return html(res, 404, pages.notFound());
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'payment retry failed');
      return html(res, 500, pages.failed());
    }
  });

  // ---- ECPay AIO ---------------------------------------------------------------------------
  r.get('/payments/ecpay/checkout/:ref', async (req: Request, res: Response) => {
    const out = await payments.ecpayCheckoutPage(String(req.params.ref));
    res.set('Cache-Control', 'no-store');
    switch (out.kind) {
      case 'form':
        return html(res, 200, out.html);
      case 'paid':
        return html(res, 200, pages.alreadyPaid());
      case 'expired':
        return html(res, 410, pages.expired());
      case 'superseded':
        return html(res, 410, pages.superseded());
      default:
        return html(res, 404, pages.notFound());
    }
  });

  const ecpayCallback = (kind: 'notify' | 'payment-info') => async (req: Request, res: Response) => {
    res.type('text/plain');
    const ec = payments.ecpayPort();
    if (!ec) return res.status(404).send('0|ECPay not configured');
    const body = Object.fromEntries(Object.entries((req.body ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
    const v = ec.verifyCallback(body);
    if (!v.ok) {
      log.warn({ kind, reason: v.reason, tradeNo: body.MerchantTradeNo }, 'ECPay callback rejected');
      return res.status(400).send(`0|${v.reason}`);
    }
    try {
      const check = await payments.checkEcpayCallback(v.fields);
      if (check !== 'ok') {
        log.warn({ kind, check, tradeNo: v.fields.MerchantTradeNo }, 'ECPay callback does not match our records');
        return res.status(400).send(`0|${check}`);
      }
      if (kind === 'notify') {
        const f = v.fields;
        await payments.recordNotification({
          provider: 'ecpay',
          dedupeKey: `return:${f.MerchantTradeNo}:${f.RtnCode}:${f.TradeNo ?? ''}`,
          kind: 'return',
          tradeNo: f.MerchantTradeNo!,
          payload: f,
        });
      } else {
        const f = v.fields;
        // Applied right here (no bank query needed to show a code); replays push nothing new.
        await payments.applyEcpayPaymentInfo(f);
        await payments.recordNotification({
          provider: 'ecpay',
          dedupeKey: `info:${f.MerchantTradeNo}:${f.RtnCode}`,
          kind: 'payment-info',
          tradeNo: f.MerchantTradeNo!,
          payload: f,
          enqueue: false,
        });
      }
      return res.status(200).send('1|OK');
    } catch (err) {
      log.error({ err: err instanceof Error ? err.message : String(err), kind }, 'ECPay callback not recorded');
      return res.status(503).send('0|temporarily unavailable');
    }
  };
  r.post('/payments/ecpay/notify', form, ecpayCallback('notify'));
  r.post('/payments/ecpay/payment-info', form, ecpayCallback('payment-info'));

  // OrderResultURL: the browser's copy of the result. Shown, never acted on.
  r.post('/payments/ecpay/result', form, async (req: Request, res: Response) => {
    const ec = payments.ecpayPort();
    const body = Object.fromEntries(Object.entries((req.body ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
    if (!ec || !ec.verifyCallback(body).ok) return html(res, 200, pages.processing());
    let state: Awaited<ReturnType<typeof payments.tradeState>>;
    try {
      state = await payments.tradeState('ecpay', body.MerchantTradeNo ?? '');
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'ECPay result page: state unavailable');
      return html(res, 200, pages.processing());
    }
    if (state === 'paid' || body.RtnCode === '1') return html(res, 200, state === 'paid' ? pages.paid() : pages.processing());
    return html(res, 200, pages.failed());
  });
  r.all('/payments/ecpay/back', (_req: Request, res: Response) => html(res, 200, pages.processing()));

  return r;
}
