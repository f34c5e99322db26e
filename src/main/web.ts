import { describeConfig, loadConfigOrExit } from '../config';
import { createContainer } from '../container';
import { createApp } from '../web/app';

/** `npm start`: the web process. Stateless; run as many as you like. */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const c = createContainer(config);
  const app = createApp(c);
  const server = app.listen(config.port, () => c.log.info({ config: describeConfig(config) }, 'web listening'));
  server.keepAliveTimeout = 65_000;

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    c.log.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
    server.close(async () => {
      await c.close();
      c.log.info('web stopped');
      process.exit(0);
    });
    server.closeIdleConnections();
    setTimeout(() => process.exit(1), 25_000).unref();
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

void main();
