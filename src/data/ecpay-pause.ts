import type { EcpayCallGate } from '../gateways/ecpay/ecpay-client';
import type { Redis } from './redis';

/** The Redis key holding ECPay's pause after an HTTP 403 (its TTL is what is left of the pause). */
export const ecpayPauseKey = (queuePrefix: string): string => `${queuePrefix}:ecpay:paused-until`;

/**
 * The ECPay pause shared by every web and worker process: one key with a TTL. Readers see the
 * remaining milliseconds; a key that expired (or a Redis that lost it) means "call again".
 */
export class RedisCallGate implements EcpayCallGate {
  constructor(
    private readonly redis: Redis,
    readonly key: string,
  ) {}

  async pausedForMs(): Promise<number> {
    const ttl = await this.redis.pttl(this.key);
    return ttl > 0 ? ttl : 0;
  }

  async pause(ms: number): Promise<void> {
    const until = new Date(Date.now() + ms).toISOString();
    await this.redis.set(this.key, until, 'PX', Math.max(1, Math.round(ms)));
  }
}
