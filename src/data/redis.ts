import IORedis, { Redis, RedisOptions } from 'ioredis';

export type { Redis };

/**
 * Producers fail fast when Redis is down (so callers can fall back to the inbox sweeper);
 * workers block and retry forever, as BullMQ requires.
 */
export function createRedis(url: string, role: 'producer' | 'worker'): Redis {
  const opts: RedisOptions =
    role === 'producer'
      ? {
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          connectTimeout: 2000,
          retryStrategy: (times) => Math.min(times * 200, 2000),
        }
      : { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 200, 2000) };
  const redis = new IORedis(url, opts);
  // Connection errors are retried by ioredis; without a listener they would be unhandled.
  redis.on('error', () => undefined);
  return redis;
}
