import type { Config } from '../config';
import type { EcpayPort, Gateways } from '../domain/payments';
import type { Logger } from '../logger';
import { EcpayCallGate, EcpayClient } from './ecpay/ecpay-client';
import { EcpayGateway, EcpayCheckoutInput, parseEcpayDate } from './ecpay/ecpay-gateway';
import { SinopacClient } from './sinopac/sinopac-client';
import { SinopacGateway } from './sinopac/sinopac-gateway';

/** ECPay's gateway plus the callback and checkout-page helpers only ECPay needs. */
class EcpayAdapter extends EcpayGateway implements EcpayPort {
  constructor(
    private readonly ecClient: EcpayClient,
    publicBaseUrl: string,
    readonly isProduction: boolean,
    now?: () => Date,
  ) {
    super({ client: ecClient, publicBaseUrl, now });
  }

  verifyCallback(body: Record<string, string>) {
    const v = this.ecClient.verifyCallback(body);
    return v.ok ? { ok: true as const, fields: v.fields } : { ok: false as const, reason: v.reason };
  }

  checkoutPage(input: EcpayCheckoutInput): string {
    return this.checkoutPageFor(input);
  }

  parseDate(s: string): Date {
    return parseEcpayDate(s);
  }
}

export interface GatewayOptions {
  /** ECPay's pause after an HTTP 403, shared by all processes (Redis); default: this process only. */
  ecpayGate?: EcpayCallGate;
  /** The clock of ECPay calls (TimeStamp, daily capture window); tests move it. Default: real time. */
  ecpayNow?: () => Date;
}

/** Only providers whose settings are present are built (and so offered to shoppers). */
export function buildGateways(config: Config, log: Logger, timeoutMs?: number, opts: GatewayOptions = {}): Gateways {
  const base = config.publicBaseUrl;
  return {
    sinopac: config.sinopac
      ? new SinopacGateway({
          client: new SinopacClient({ config: config.sinopac, timeoutMs, logger: log }),
          shopNo: config.sinopac.shopNo,
          backendUrl: `${base}/payments/sinopac/notify`,
          returnUrl: `${base}/payments/sinopac/return`,
        })
      : null,
    ecpay: config.ecpay
      ? new EcpayAdapter(
          new EcpayClient({ config: config.ecpay, timeoutMs, logger: log, gate: opts.ecpayGate, now: opts.ecpayNow }),
          base,
          config.ecpay.isProduction,
          opts.ecpayNow,
        )
      : null,
  };
}
