import http from 'node:http';

/** A small closed-loop HTTP load generator: `connections` clients, each sending back to back for `seconds`. */
export async function load(opts: {
  url: string;
  seconds: number;
  connections: number;
  request: (i: number) => { body: string; headers: Record<string, string> };
}): Promise<{ requests: number; perSecond: number; errors: number; statuses: Record<number, number>; p50: number; p99: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections });
  const u = new URL(opts.url);
  const end = Date.now() + opts.seconds * 1000;
  let seq = 0;
  let errors = 0;
  const statuses: Record<number, number> = {};
  const latencies: number[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      const { body, headers } = opts.request(seq++);
      const t0 = process.hrtime.bigint();
      const req = http.request(
        { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.resume();
          res.on('end', () => {
            statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
            latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
  const start = Date.now();
  await Promise.all(
    Array.from({ length: opts.connections }, async () => {
      while (Date.now() < end) await one();
    }),
  );
  const elapsed = (Date.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  const requests = latencies.length;
  return { requests, perSecond: requests / elapsed, errors, statuses, p50: pct(0.5), p99: pct(0.99) };
}
