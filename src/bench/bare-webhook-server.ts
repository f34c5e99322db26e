import express from 'express';
import { middleware } from '@line/bot-sdk';

/**
 * The webhook benchmark's baseline, as its own process: express with only the LINE SDK's middleware
 * (signature check, JSON parse), answering 200. Usage: node bare-webhook-server.js <port> <secret>.
 */
const [port, secret] = process.argv.slice(2);
const app = express();
app.post('/webhook/line', middleware({ channelSecret: secret! }), (_req, res) => {
  res.status(200).json({});
});
app.get('/readyz', (_req, res) => {
  res.json({ ok: true });
});
const server = app.listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
