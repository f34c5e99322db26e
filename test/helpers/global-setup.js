// Fails fast, with one clear line, when the services the suite needs are not running.
const net = require('node:net');

function probe(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
    s.setTimeout(2000, () => { s.destroy(); resolve(false); });
  });
}

module.exports = async () => {
  const [pg, redis] = await Promise.all([probe(5432), probe(6379)]);
  if (!pg || !redis) {
    throw new Error(`test services missing: PostgreSQL ${pg ? 'up' : 'DOWN'} on 5432, Redis ${redis ? 'up' : 'DOWN'} on 6379`);
  }
};
