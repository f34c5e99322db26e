import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

/** A port of 127.0.0.1 that was free a moment ago (nothing listens on it now). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** The exit code once the process has exited (null when a signal ended it). */
export function exitOf(p: ChildProcess): Promise<number | null> {
  // A process killed by a signal has exitCode null and signalCode set: it has exited all the same.
  return new Promise((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve(p.exitCode) : p.once('exit', (code) => resolve(code))));
}
