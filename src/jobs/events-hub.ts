import type { Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
import { keys } from './contract.ts';
import { parseEntries, readEvents, type JobEvent } from './events.ts';

interface Client {
  /** Highest seq sent; events at or below it are not sent again. */
  last: number;
  /** Live events that arrive while the client's replay is still being read. */
  buffer: JobEvent[] | null;
  send: (event: JobEvent) => void;
}

interface Subscription {
  /** Stream id the live reader has read up to. */
  lastId: string;
  clients: Set<Client>;
}

const BLOCK_MS = 250;

/**
 * Reads each watched job's event stream once, on one blocking Redis connection,
 * and fans every event out to all the WebSocket clients of that job. A client
 * that joins late first replays what it missed from the stream (after `since`),
 * then gets live events; seq numbers make the hand-over exact.
 */
export class EventsHub {
  private subs = new Map<string, Subscription>();
  private wake?: () => void;
  private closed = false;
  private loop?: Promise<void>;

  constructor(
    private readonly redis: Redis,
    private readonly reader: Redis,
    private readonly prefix: string,
    private readonly log: FastifyBaseLogger,
  ) {}

  clientCount(jobId: string): number {
    return this.subs.get(jobId)?.clients.size ?? 0;
  }

  /** Sends every event after `since`, then live ones, to `send`; returns the unsubscribe function. */
  async subscribe(jobId: string, since: number, send: (event: JobEvent) => void): Promise<() => void> {
    let sub = this.subs.get(jobId);
    if (!sub) {
      const newest = (await this.redis.xrevrange(keys.events(this.prefix, jobId), '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
      sub = this.subs.get(jobId) ?? { lastId: newest[0]?.[0] ?? '0-0', clients: new Set() };
      this.subs.set(jobId, sub);
    }
    const client: Client = { last: since, buffer: [], send };
    sub.clients.add(client);
    const unsubscribe = () => {
      sub!.clients.delete(client);
      if (sub!.clients.size === 0 && this.subs.get(jobId) === sub) this.subs.delete(jobId);
    };
    try {
      for (const event of await readEvents(this.redis, this.prefix, jobId, since)) this.deliver(client, event);
      const buffered = client.buffer ?? [];
      client.buffer = null;
      for (const event of buffered) this.deliver(client, event);
    } catch (err) {
      unsubscribe();
      throw err;
    }
    this.start();
    this.wake?.();
    return unsubscribe;
  }

  private deliver(client: Client, event: JobEvent): void {
    if (event.seq <= client.last) return;
    client.last = event.seq;
    client.send(event);
  }

  private start(): void {
    this.loop ??= this.run().catch((err) => this.log.error({ err }, 'events hub stopped'));
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      if (this.subs.size === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      const jobIds = [...this.subs.keys()];
      let reply: Array<[string, Array<[string, string[]]>]> | null;
      try {
        reply = (await this.reader.xread(
          'BLOCK', BLOCK_MS,
          'STREAMS', ...jobIds.map((id) => keys.events(this.prefix, id)),
          ...jobIds.map((id) => this.subs.get(id)!.lastId),
        )) as typeof reply;
      } catch (err) {
        if (this.closed) return;
        this.log.warn({ err: (err as Error).message }, 'events hub read failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      for (const [streamKey, entries] of reply ?? []) {
        const jobId = streamKey.slice(keys.events(this.prefix, '').length);
        const sub = this.subs.get(jobId);
        if (!sub || entries.length === 0) continue;
        sub.lastId = entries[entries.length - 1][0];
        for (const event of parseEntries(entries)) {
          for (const client of sub.clients) {
            if (client.buffer) client.buffer.push(event);
            else this.deliver(client, event);
          }
        }
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    this.reader.disconnect();
    await this.loop;
  }
}
