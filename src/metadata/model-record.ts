import type { Redis } from 'ioredis';
import { runLua } from './lua.ts';
import type { CompiledConfig, ModelSummary, TensorInfo } from '../model-spec/types.ts';

export interface ModelVersion {
  version: number;
  job_id: string;
  created_at: string;
  metrics: Record<string, number>;
}

/** The model record in Redis. */
export interface ModelRecord {
  id: string;
  name: string;
  spec: unknown;
  /** compile as the user wrote it (or null). */
  compile: unknown;
  /** compile validated and normalised against the outputs; what workers use (null: not compiled yet). */
  compiled: CompiledConfig | null;
  summary: ModelSummary;
  summary_text: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  versions: ModelVersion[];
  /** Last version number handed out (versions may skip one a crashed fit reserved). */
  version_counter: number;
  created_at: string;
}

export function publicModel(rec: ModelRecord) {
  const { compiled: _compiled, summary_text: _text, version_counter: _counter, ...rest } = rec;
  return rest;
}

// HINCRBY only on a model that still exists: a plain HINCRBY would recreate a deleted one.
const RESERVE_VERSION = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'version_counter', 1)`;

/** Reserves the next version number of a model (atomic across workers); 0 when it was deleted. */
export async function reserveVersion(redis: Redis, modelKey: string): Promise<number> {
  return Number(await runLua(redis, 'ktsReserveVersion', RESERVE_VERSION, [modelKey], []));
}

// Appends to the JSON `versions` array inside Redis, so two workers finishing fits of
// one model at once cannot overwrite each other's entry.
const APPEND_VERSION = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local raw = redis.call('HGET', KEYS[1], 'versions')
local list = {}
if raw and raw ~= '[]' then list = cjson.decode(raw) end
table.insert(list, cjson.decode(ARGV[1]))
table.sort(list, function(a, b) return a.version < b.version end)
redis.call('HSET', KEYS[1], 'versions', cjson.encode(list))
return 1`;

/** Records a saved version on the model; false when the model was deleted meanwhile. */
export async function appendVersion(redis: Redis, modelKey: string, version: ModelVersion): Promise<boolean> {
  return (await runLua(redis, 'ktsAppendVersion', APPEND_VERSION, [modelKey], [JSON.stringify(version)])) === 1;
}
