import type { Redis } from 'ioredis';
import { runLua } from './lua.ts';

/**
 * Resource metadata in Redis, one hash per record with a JSON value per field
 * (so the API and a worker can update different fields without clobbering each
 * other), and one sorted set per tenant and kind for newest-first listing.
 * The tenant is part of every key: another tenant's id simply does not exist.
 */
const PATCH_EXISTING = "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end; redis.call('HSET', KEYS[1], unpack(ARGV)); return 1";

export type Kind = 'dataset' | 'model' | 'job';

export class Records {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  key(kind: Kind, tenant: string, id: string): string {
    return `${this.prefix}:${kind}:${tenant}:${id}`;
  }

  private indexKey(kind: Kind, tenant: string): string {
    return `${this.prefix}:index:${kind}:${tenant}`;
  }

  /** Creates a record and indexes it, atomically. */
  async create(kind: Kind, tenant: string, id: string, record: Record<string, unknown>): Promise<void> {
    await this.redis
      .multi()
      .hset(this.key(kind, tenant, id), encode(record))
      .zadd(this.indexKey(kind, tenant), 0, id)
      .exec();
  }

  async get<T>(kind: Kind, tenant: string, id: string): Promise<T | undefined> {
    const raw = await this.redis.hgetall(this.key(kind, tenant, id));
    if (Object.keys(raw).length === 0) return undefined;
    return decode(raw) as T;
  }

  /** Sets some fields of an existing record; false when it does not exist (deleted meanwhile). */
  async patch(kind: Kind, tenant: string, id: string, fields: Record<string, unknown>): Promise<boolean> {
    const key = this.key(kind, tenant, id);
    const encoded = encode(fields);
    // Only patch a record that still exists, so a late worker write cannot resurrect a deleted one.
    const done = await runLua(this.redis, 'ktsPatchExisting', PATCH_EXISTING, [key], Object.entries(encoded).flat());
    return done === 1;
  }

  async delete(kind: Kind, tenant: string, id: string): Promise<boolean> {
    const [[, removed]] = (await this.redis
      .multi()
      .del(this.key(kind, tenant, id))
      .zrem(this.indexKey(kind, tenant), id)
      .exec()) as Array<[Error | null, number]>;
    return removed === 1;
  }

  /** Newest first; `cursor` is the last id of the previous page. */
  async list<T>(kind: Kind, tenant: string, limit: number, cursor?: string): Promise<{ items: T[]; next_cursor: string | null }> {
    const max = cursor ? `(${cursor}` : '+';
    const ids = await this.redis.zrevrangebylex(this.indexKey(kind, tenant), max, '-', 'LIMIT', 0, limit + 1);
    const page = ids.slice(0, limit);
    const pipeline = this.redis.pipeline();
    for (const id of page) pipeline.hgetall(this.key(kind, tenant, id));
    const results = (await pipeline.exec()) ?? [];
    const items = results
      .map(([, raw]) => raw as Record<string, string>)
      .filter((raw) => raw && Object.keys(raw).length > 0)
      .map((raw) => decode(raw) as T);
    return { items, next_cursor: ids.length > limit ? page[page.length - 1] : null };
  }
}

function encode(record: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(record)) if (v !== undefined) out[k] = JSON.stringify(v);
  return out;
}

function decode(raw: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) out[k] = JSON.parse(v);
  return out;
}
