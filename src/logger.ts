import pino, { Logger } from 'pino';

export type { Logger };

/** One JSON logger; secrets are redacted by path in case a caller logs a config or headers. */
export function createLogger(level = 'info', name = 'lineshop'): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: [
        '*.channelSecret',
        '*.channelAccessToken',
        '*.hashKey',
        '*.hashIv',
        '*.hashA1',
        '*.hashA2',
        '*.hashB1',
        '*.hashB2',
        '*.keyId',
        'headers.authorization',
        '*.headers.authorization',
      ],
      censor: '[redacted]',
    },
  });
}

export const silentLogger: Logger = pino({ level: 'silent' });
