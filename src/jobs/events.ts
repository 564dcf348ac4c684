import type { Redis } from 'ioredis';
import { keys } from './contract.ts';
import { runLua } from '../metadata/lua.ts';

/** A job event as clients receive it: `seq` is monotonic per job, starting at 1. */
export type JobEvent = { seq: number; type: string; [field: string]: unknown };

/** Events expire this long after the job's last event, like the stream's job. */
const EVENTS_TTL_SECONDS = 30 * 24 * 3600;

// INCR and XADD in one step, so seq order equals stream order even with two writers
// (the API writes "cancelled" for a queued job; the worker writes the rest).
const APPEND = `
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], seq .. '-1', 'e', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return seq`;

/** Appends an event to the job's stream; returns its seq. */
export async function appendEvent(redis: Redis, prefix: string, jobId: string, event: { type: string; [field: string]: unknown }): Promise<number> {
  // ts: when the event was written (ms since the epoch), for clients and the WebSocket-lag bench.
  const seq = await runLua(redis, 'ktsAppendEvent', APPEND, [keys.eventSeq(prefix, jobId), keys.events(prefix, jobId)], [JSON.stringify({ ...event, ts: Date.now() }), EVENTS_TTL_SECONDS]);
  return Number(seq);
}

/** Stream entries -> events; the stream id `<seq>-1` carries the seq. */
export function parseEntries(entries: Array<[string, string[]]>): JobEvent[] {
  return entries.map(([id, fields]) => ({ seq: Number(id.split('-')[0]), ...JSON.parse(fields[1]) }));
}

/** Every event with seq > since. */
export async function readEvents(redis: Redis, prefix: string, jobId: string, since = 0): Promise<JobEvent[]> {
  const entries = (await redis.xrange(keys.events(prefix, jobId), `(${since}-1`, '+')) as Array<[string, string[]]>;
  return parseEntries(entries);
}

/** The newest event of a type in a job's stream (read backwards a page at a time), or null. */
export async function lastEventOfType(redis: Redis, prefix: string, jobId: string, type: string): Promise<JobEvent | null> {
  let end = '+';
  for (;;) {
    const entries = (await redis.xrevrange(keys.events(prefix, jobId), end, '-', 'COUNT', 200)) as Array<[string, string[]]>;
    if (entries.length === 0) return null;
    const found = parseEntries(entries).find((e) => e.type === type);
    if (found) return found;
    end = `(${entries.at(-1)![0]}`;
  }
}
