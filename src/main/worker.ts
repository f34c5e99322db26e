import http from 'node:http';
import { describeConfig, loadConfigOrExit } from '../config';
import { createContainer } from '../container';
import { startWorkers } from '../jobs/worker';

/** `npm run worker`: every BullMQ worker plus the sweepers and schedules. Stateless; scale freely. */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const c = createContainer(config);
  // Signals are handled from the start: jobs may already run while the schedules are being set up,
  // and a SIGTERM then must still let them finish.
  const starting = startWorkers(c);
  // Delivery results are counted here, in the worker: Prometheus scrapes it on its own port.
  const metricsServer = config.workerMetricsPort
    ? http
        .createServer((req, res) => {
          if (req.url !== '/metrics') return void res.writeHead(404).end();
          c.metrics.registry.metrics().then(
            (body) => res.writeHead(200, { 'content-type': c.metrics.registry.contentType }).end(body),
            () => res.writeHead(500).end(),
          );
        })
        .listen(config.workerMetricsPort)
    : null;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    c.log.info({ signal }, 'worker shutting down: finishing running jobs');
    setTimeout(() => process.exit(1), 30_000).unref();
    metricsServer?.close();
    const workers = await starting.catch(() => null);
    await workers?.close(); // worker first, then queues, Redis and knex
    await c.close();
    c.log.info('worker stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  await starting;
  c.log.info({ config: describeConfig(config) }, 'worker started');
}

void main();
