import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
import { Supervised } from './supervisor.ts';

/** The redis-server binary on PATH or in Debian's places, if any. */
export function findRedisServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin'];
  return dirs.map((d) => path.join(d, 'redis-server')).find((p) => fs.existsSync(p));
}

/** A free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForRedis(url: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.ping();
      // Wait for the AOF to be loaded, so no request sees an empty store.
      const info = await probe.info('persistence');
      if (/loading:0/.test(info)) return;
    } catch {
      // not up yet
    } finally {
      probe.disconnect();
    }
    if (Date.now() > end) throw new Error(`redis-server did not answer on ${url} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A supervised local redis-server on a free loopback port, its data under
 * `dir` with AOF on (appendfsync everysec) and noeviction, as BullMQ's
 * production guide asks; restarted on the same port if it dies.
 */
export async function startEmbeddedRedis(dir: string, log: FastifyBaseLogger, port?: number): Promise<{ url: string; process: Supervised }> {
  const binary = findRedisServer();
  if (!binary) throw new Error('redis-server is not installed: run `apt-get install redis-server` (npm start tries this itself), or set REDIS_URL to a Redis 6.2+ server');
  fs.mkdirSync(dir, { recursive: true });
  const chosen = port ?? (await freePort());
  const url = `redis://127.0.0.1:${chosen}`;
  const args = [
    '--port', String(chosen), '--bind', '127.0.0.1', '--dir', dir,
    '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '',
    '--maxmemory-policy', 'noeviction', '--protected-mode', 'yes', '--daemonize', 'no', '--loglevel', 'warning',
  ];
  const proc = new Supervised('redis', binary, args, { stdio: ['ignore', 'ignore', 'inherit'] }, log, () => waitForRedis(url));
  await proc.start();
  log.info({ url, dir }, 'embedded redis running');
  return { url, process: proc };
}
