import type { NextFunction, Request, Response } from 'express';
import type { Metrics } from '../metrics';

/** Callback routes are counted by their pattern, never by the raw path (which may carry tokens). */
const CALLBACK_ROUTES: Array<[RegExp, string]> = [
  [/^\/payments\/sinopac\/notify$/, 'sinopac-notify'],
  [/^\/payments\/sinopac\/return$/, 'sinopac-return'],
  [/^\/payments\/ecpay\/notify$/, 'ecpay-notify'],
  [/^\/payments\/ecpay\/payment-info$/, 'ecpay-payment-info'],
  [/^\/payments\/ecpay\/result$/, 'ecpay-result'],
  [/^\/logistics\/ecpay\/notify$/, 'ecpay-logistics-notify'],
  [/^\/logistics\/ecpay\/map-reply$/, 'ecpay-logistics-map-reply'],
];

/** Counts and times the webhook and the bank callbacks as they are answered. */
export function requestMetrics(m: Metrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method !== 'POST') return next();
    const isWebhook = req.path === '/webhook/line';
    const route = isWebhook ? null : CALLBACK_ROUTES.find(([re]) => re.test(req.path))?.[1];
    if (!isWebhook && !route) return next();
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (isWebhook) {
        m.webhookRequests.inc({ status: String(res.statusCode) });
        m.webhookSeconds.observe(seconds);
      } else {
        m.callbacks.inc({ route: route!, status: String(res.statusCode) });
        m.callbackSeconds.observe({ route: route! }, seconds);
      }
    });
    next();
  };
}
