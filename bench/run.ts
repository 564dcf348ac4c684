/**
 * `npm run bench`: the figures of issue 7, each against a baseline measured in the same run
 * (on a shared 2-core machine, absolute numbers drift run to run; ratios much less). Writes
 * bench/results/<UTC date>.json, appends the same object as one line to bench/results.jsonl,
 * and prints a markdown table (docs/engine.md explains how to read it).
 *
 * 1. Training samples/s of an MLP, a small CNN and an Embedding+LSTM model (bench/lib.ts),
 *    batch 32, Adam, through the workers' own fit loop ("bare": no HTTP, queue, worker process,
 *    events or checkpoints), on wasm with our engine, in fresh child processes (bench/bare.ts).
 * 2. The same through stock tfjs (child processes with TF_WASM_KERNELS=stock): the MLP on stock
 *    wasm, the CNN and the LSTM on the cpu backend (stock wasm cannot train them). Engine / stock
 *    = the engine's gain. The MLP also through tfjs-layers' own model.fit on stock wasm (stock
 *    tfjs as a tfjs user trains), and, with the engine, through our loop kept off the dense
 *    fast path (what the fast path itself gives). 3. The engine with TF_WASM_THREADS=2, MLP and CNN, vs 1 thread.
 *    The variants of 1-3 run interleaved, BENCH_ROUNDS rounds, medians reported. In this process:
 *    our fit loop vs tfjs-layers' model.fit on the MLP, alternating, and an LSTM(512) x 2 build.
 * 4. The service: a fit job per model over HTTP -> queue -> worker process, its rate taken from
 *    its WebSocket epoch events (first to last epoch event, so the worker's warm-up is left out),
 *    bracketed by two bare fits of the same data, epochs and seed in this process, timed the same
 *    way from their epoch ends (their mean is the baseline): baseline / service - 1 = the service overhead. Queue latency: POST fit -> the
 *    job's started_at, worker idle. WebSocket lag: an event's arrival at a WebSocket client minus
 *    its arrival at a Redis XREAD reader in this process (or minus the event's own `ts` when the
 *    worker stamps one). Predict latency p50/p99 with 1 and 64 concurrent clients (1 instance per
 *    request, real HTTP with keep-alive).
 *
 * Sizes come from the environment (BENCH_*, see CONFIG below); BENCH_SKIP=stock,threads,service,datasets,
 * predict,queue leaves sections out.
 */
import { runDatasetsBench } from './datasets.ts';
import fs from 'node:fs';
import os from 'node:os';
import { execSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Redis } from 'ioredis';
import { initBackend } from '../src/engine/backend.ts';
import { keys } from '../src/jobs/contract.ts';
import { startStack, waitForWorkers, type Stack } from '../test/helpers/stack.ts';
import { COMPILE, MODELS, envInt, fitEpochsRate, lstm512BuildSeconds, makeData, median, npyHeader, percentile, round, tfjsFitRate, trainRate, type ModelKey } from './lib.ts';

const started = performance.now();
const CONFIG = {
  batch_size: envInt('BENCH_BATCH', 32),
  reps: envInt('BENCH_REPS', 3),
  samples: { mlp: envInt('BENCH_MLP_SAMPLES', 8192), cnn: envInt('BENCH_CNN_SAMPLES', 2048), lstm: envInt('BENCH_LSTM_SAMPLES', 512) },
  stock_samples: { mlp: envInt('BENCH_STOCK_MLP_SAMPLES', 4096), cnn: envInt('BENCH_STOCK_CNN_SAMPLES', 64), lstm: envInt('BENCH_STOCK_LSTM_SAMPLES', 32) },
  // The MLP's service epoch is MNIST-sized (60,000 samples): at ~100k samples/s a smaller one
  // is over in tens of ms, and the per-epoch work (checkpoint, events) would be all it measures.
  service_samples: { mlp: envInt('BENCH_SERVICE_MLP_SAMPLES', 60000), cnn: envInt('BENCH_SERVICE_CNN_SAMPLES', 2048), lstm: envInt('BENCH_SERVICE_LSTM_SAMPLES', 512) },
  service_epochs: Math.max(2, envInt('BENCH_SERVICE_EPOCHS', 5)),
  threads: envInt('BENCH_THREADS', 2),
  queue_jobs: envInt('BENCH_QUEUE_JOBS', 5),
  predict_requests: envInt('BENCH_PREDICT_REQUESTS', 200),
  predict_clients: envInt('BENCH_PREDICT_CLIENTS', 64),
  predict_per_client: envInt('BENCH_PREDICT_PER_CLIENT', 8),
  skip: (process.env.BENCH_SKIP ?? '').split(',').map((s) => s.trim()).filter(Boolean),
};
const skip = (section: string) => CONFIG.skip.includes(section);
const log = (...args: unknown[]) => console.error(`[bench ${((performance.now() - started) / 1000).toFixed(0)}s]`, ...args);
const KEYS: ModelKey[] = ['mlp', 'cnn', 'lstm'];

const backend = await initBackend(process.env.TF_BACKEND);
log('backend', backend);

/** Runs bench/bare.ts with extra env; its last stdout line is the result. */
type Rate = { model: ModelKey; backend: string; samples_per_s: number; kind?: string; error?: string };
function child(env: Record<string, string>, jobs: unknown[]): { backend: unknown; rates: Rate[] } | { error: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./bare.ts', import.meta.url))], {
    env: { ...process.env, ...env, BENCH_JOBS: JSON.stringify(jobs) }, encoding: 'utf8', timeout: 240_000, maxBuffer: 16 << 20,
  });
  const last = r.stdout?.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(last);
  } catch {
    return { error: `child failed (status ${r.status}): ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' ')}` };
  }
}

// 1-3. Bare loops in fresh child processes, the variants interleaved round by round so that
// load from elsewhere on the machine falls on all of them alike: our engine (1 thread), stock
// tfjs (TF_WASM_KERNELS=stock: the MLP on wasm, the CNN and LSTM on cpu, in the first
// BENCH_STOCK_CPU_ROUNDS rounds only, being slow), and the engine with TF_WASM_THREADS.
const ROUNDS = Math.max(1, envInt('BENCH_ROUNDS', 5));
const STOCK_CPU_ROUNDS = envInt('BENCH_STOCK_CPU_ROUNDS', 1);
// A child process starts cold: on wasm, warm it up on 32 batches first (V8's JIT, XNNPACK's
// packing); one batch left the MLP ~40% under its warm speed. The slow stock-cpu runs keep one.
const job = (model: ModelKey, n: number, be: 'wasm' | 'cpu', extra: Record<string, unknown> = {}) =>
  ({ model, n, backend: be, reps: 1, batchSize: CONFIG.batch_size, ...(be === 'wasm' ? { warmup: Math.min(n, 32 * CONFIG.batch_size) } : {}), ...extra });
const variants: Array<{ name: string; env: Record<string, string>; jobs: (round: number) => unknown[] }> = [];
let stockNote: string | undefined;
if (backend.backend !== 'wasm') stockNote = `the backend is ${backend.backend}: the engine's wasm kernels are not in use, nothing to compare`;
else {
  variants.push({ name: 'engine', env: { TF_WASM_THREADS: '1' }, jobs: () => [
    ...KEYS.map((k) => job(k, CONFIG.samples[k], 'wasm')),
    job('mlp', CONFIG.samples.mlp, 'wasm', { kind: 'tfjs_path' })] });
  if (!skip('stock')) {
    variants.push({ name: 'stock', env: { TF_WASM_KERNELS: 'stock', TF_WASM_THREADS: '1' }, jobs: (round) => [
      job('mlp', CONFIG.stock_samples.mlp, 'wasm'),
      job('mlp', CONFIG.stock_samples.mlp, 'wasm', { kind: 'model_fit' }),
      ...(round < STOCK_CPU_ROUNDS ? [
        job('cnn', CONFIG.stock_samples.cnn, 'cpu'),
        // The cpu backend trains this LSTM at a few samples/s: warm up on 8 samples only.
        job('lstm', CONFIG.stock_samples.lstm, 'cpu', { warmup: 8 }),
      ] : []),
    ] });
  } else stockNote = 'skipped (BENCH_SKIP)';
  if (CONFIG.threads > 1 && !skip('threads')) {
    variants.push({ name: `threads${CONFIG.threads}`, env: { TF_WASM_THREADS: String(CONFIG.threads) }, jobs: () => [
      job('mlp', CONFIG.samples.mlp, 'wasm'), job('cnn', CONFIG.samples.cnn, 'wasm')] });
  }
}
// Rates by variant, then by model (our loop) or `<model>_<kind>`.
const rates: Record<string, Record<string, number[]>> = {};
const childBackends: Record<string, unknown> = {};
const childErrors: string[] = [];
for (let pass = 0; pass < ROUNDS; pass++) {
  for (const v of variants) {
    const out = child(v.env, v.jobs(pass));
    if ('error' in out) {
      childErrors.push(`${v.name}: ${out.error}`);
      continue;
    }
    childBackends[v.name] ??= out.backend;
    for (const r of out.rates) {
      if (r.error) childErrors.push(`${v.name} ${r.model}: ${r.error}`);
      else ((rates[v.name] ??= {})[r.kind && r.kind !== 'loop' ? `${r.model}_${r.kind}` : r.model] ??= []).push(r.samples_per_s);
    }
  }
  log(`round ${pass + 1}/${ROUNDS}`, JSON.stringify(Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([m, xs]) => [m, xs!.map((x) => round(x, 1))]))]))));
}
const rateOf = (variant: string, key: string): number | undefined => {
  const xs = rates[variant]?.[key];
  return xs && xs.length ? median(xs) : undefined;
};
const stockBackend: Record<ModelKey, string> = { mlp: 'wasm', cnn: 'cpu', lstm: 'cpu' };

// In this process: our fit loop vs tfjs-layers' model.fit on the MLP, alternating.
const ours: number[] = [];
const theirs: number[] = [];
for (let r = 0; r < CONFIG.reps; r++) {
  ours.push((await trainRate('mlp', CONFIG.samples.mlp, { batchSize: CONFIG.batch_size, reps: 1 })).samples_per_s);
  theirs.push(await tfjsFitRate(CONFIG.samples.mlp, CONFIG.batch_size, 1));
}
const buildSeconds = lstm512BuildSeconds();
const inspectSeconds = lstm512BuildSeconds(3, true);
log('our fit vs tfjs model.fit', round(median(ours)), round(median(theirs)), 'LSTM(512)x2 build s', round(buildSeconds, 3));

// 4. The service.
interface Arrival { seq: number; type: string; at: number; wall: number; ts?: number; event: Record<string, unknown> }

/** A job's events, as a WebSocket client and a Redis XREAD reader (both in this process) see them. */
function watchJob(stack: Stack, reader: Redis, jobId: string) {
  const ws: Arrival[] = [];
  const redis = new Map<number, number>();
  const socket = new WebSocket(`${stack.url.replace('http', 'ws')}/v1/jobs/${jobId}/events`);
  const done = new Promise<Record<string, unknown>>((resolve, reject) => {
    socket.on('message', (data) => {
      const at = performance.now();
      const event = JSON.parse(String(data)) as Record<string, unknown>;
      ws.push({ seq: Number(event.seq), type: String(event.type), at, wall: Date.now(), ts: typeof event.ts === 'number' ? event.ts : undefined, event });
      if (event.type === 'done') resolve(event);
    });
    socket.on('error', reject);
    socket.on('close', () => setTimeout(() => reject(new Error(`job ${jobId}: socket closed before done`)), 1000));
  });
  let stop = false;
  const reading = (async () => {
    let last = '0-0';
    while (!stop) {
      const res = (await reader.xread('BLOCK', 200, 'STREAMS', keys.events(stack.config.keyPrefix, jobId), last)) as Array<[string, Array<[string, string[]]>]> | null;
      const at = performance.now();
      for (const [id] of res?.[0]?.[1] ?? []) {
        redis.set(Number(id.split('-')[0]), at);
        last = id;
      }
    }
  })();
  return {
    ws, redis, done,
    close: async () => {
      stop = true;
      socket.close();
      await reading;
    },
  };
}

async function api<T = any>(stack: Stack, method: string, path: string, body?: unknown, expect = [200, 201, 202]): Promise<T> {
  const res = await fetch(`${stack.url}${path}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const json = await res.json().catch(() => null);
  if (!expect.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
  return json as T;
}

/** Rows as the JSON API takes them (values rounded to 4 decimals to keep bodies small; the rate does not depend on them). */
function jsonRows(key: ModelKey, n: number): { x: unknown[]; y: number[] } {
  const { x, y } = makeData(key, n);
  const shape = MODELS[key].shape;
  const size = shape.reduce((a, b) => a * b, 1);
  const nest = (flat: Float32Array, dims: number[]): unknown => {
    if (dims.length === 1) return Array.from(flat, (v) => Math.round(v * 1e4) / 1e4);
    const step = flat.length / dims[0]!;
    return Array.from({ length: dims[0]! }, (_, i) => nest(flat.subarray(i * step, (i + 1) * step), dims.slice(1)));
  };
  return {
    x: Array.from({ length: n }, (_, i) => nest(x[0]!.data.subarray(i * size, (i + 1) * size), shape)),
    y: Array.from(y[0]!.data),
  };
}

/** n samples of a model's data as a dataset, uploaded as multipart .npy parts (x float32, y int32). */
async function uploadNpy(stack: Stack, key: ModelKey, n: number): Promise<{ id: string }> {
  const { x, y } = makeData(key, n);
  const form = new FormData();
  const part = (...chunks: Uint8Array[]) => new Blob(chunks.map((c) => new Uint8Array(c.buffer as ArrayBuffer, c.byteOffset, c.byteLength)));
  const xs = x[0]!.data;
  const ys = Int32Array.from(y[0]!.data);
  form.append('x', part(npyHeader('<f4', [n, ...MODELS[key].shape]), new Uint8Array(xs.buffer, xs.byteOffset, xs.byteLength)), 'x.npy');
  form.append('y', part(npyHeader('<i4', [n]), new Uint8Array(ys.buffer, ys.byteOffset, ys.byteLength)), 'y.npy');
  const res = await fetch(`${stack.url}/v1/datasets?name=bench-${key}`, { method: 'POST', body: form });
  const body = await res.json() as { id: string };
  if (res.status !== 201) throw new Error(`bench dataset ${key}: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  return body;
}

type ServiceFit = { samples: number; epochs: number; samples_per_s: number; job_seconds: number; queue_ms: number; model_id: string; arrivals: Arrival[]; redis: Map<number, number> };

async function serviceFit(stack: Stack, reader: Redis, key: ModelKey): Promise<ServiceFit> {
  const n = CONFIG.service_samples[key];
  const epochs = CONFIG.service_epochs;
  const ds = await uploadNpy(stack, key, n);
  const model = await api(stack, 'POST', '/v1/models', { name: `bench-${key}`, spec: MODELS[key].spec, compile: COMPILE });
  const wall0 = Date.now();
  const t0 = performance.now();
  const job = await api(stack, 'POST', `/v1/models/${model.id}/fit`, { dataset_id: ds.id, epochs, batch_size: CONFIG.batch_size, seed: 1 });
  const watch = watchJob(stack, reader, job.id);
  const done = await watch.done;
  const t1 = performance.now();
  await watch.close();
  if (done.status !== 'completed') throw new Error(`bench fit of ${key} ${String(done.status)}: ${JSON.stringify(done.error)}`);
  const rec = await api(stack, 'GET', `/v1/jobs/${job.id}`);
  const epochsAt = watch.ws.filter((a) => a.type === 'epoch').map((a) => a.at);
  const perEpoch = (epochsAt.at(-1)! - epochsAt[0]!) / 1000 / (epochsAt.length - 1);
  return {
    samples: n, epochs, samples_per_s: n / perEpoch, job_seconds: (t1 - t0) / 1000,
    queue_ms: Date.parse(rec.started_at) - wall0, model_id: model.id, arrivals: watch.ws, redis: watch.redis,
  };
}

let service: Record<string, unknown> = { skipped: 'BENCH_SKIP' };
let queue: Record<string, unknown> = { skipped: 'BENCH_SKIP' };
let wsLag: Record<string, unknown> = {};
let predictFig: Record<string, unknown> = { skipped: 'BENCH_SKIP' };
if (!skip('service')) {
  const stack = await startStack();
  const reader = new Redis(stack.config.redisUrl!, { maxRetriesPerRequest: null });
  try {
    await waitForWorkers(stack.app);
    log('stack up');
    const fits = {} as Record<ModelKey, ServiceFit>;
    // Each fit job is bracketed by two bare fits of the same model, data, epochs and seed in this
    // process (the service's baseline is their mean): the machine's load then falls on both alike.
    const bareAround = {} as Record<ModelKey, number[]>;
    for (const key of KEYS) {
      const bareRun = () => fitEpochsRate(key, CONFIG.service_samples[key], CONFIG.service_epochs, CONFIG.batch_size);
      const before = await bareRun();
      fits[key] = await serviceFit(stack, reader, key);
      bareAround[key] = [before, await bareRun()];
      log(`service ${key}`, round(fits[key].samples_per_s), 'samples/s, bare', bareAround[key].map((x) => round(x)), round(fits[key].job_seconds, 2), 's job');
    }
    service = Object.fromEntries(KEYS.map((key) => {
      const base = (bareAround[key][0]! + bareAround[key][1]!) / 2;
      return [key, {
        samples: fits[key].samples, epochs: fits[key].epochs,
        samples_per_s: round(fits[key].samples_per_s, 1), bare_samples_per_s: round(base, 1), bare_runs: bareAround[key].map((x) => round(x, 1)),
        job_seconds: round(fits[key].job_seconds, 3),
        overhead_pct: round((base / fits[key].samples_per_s - 1) * 100, 1),
        // What the service adds to each epoch (checkpoint, events, job record), in ms.
        per_epoch_ms: round((1 / fits[key].samples_per_s - 1 / base) * fits[key].samples * 1000, 1),
      }];
    }));

    // WebSocket lag over every live event of the three fits (the first two of each, replayed at connect, left out).
    const lags: number[] = [];
    let source = 'redis-reader';
    for (const key of KEYS) {
      for (const a of fits[key].arrivals.filter((e) => e.type === 'batch' || e.type === 'epoch').slice(2)) {
        if (a.ts !== undefined) {
          source = 'event ts';
          lags.push(a.wall - a.ts);
        } else if (fits[key].redis.has(a.seq)) {
          lags.push(a.at - fits[key].redis.get(a.seq)!);
        }
      }
    }
    wsLag = { p50_ms: round(percentile(lags, 50), 2), p99_ms: round(percentile(lags, 99), 2), max_ms: round(Math.max(...lags), 2), events: lags.length, source };
    log('ws lag', wsLag);

    // Queue latency with an idle worker: tiny fits, one at a time.
    if (!skip('queue')) {
      const ds = await api(stack, 'POST', '/v1/datasets', { name: 'bench-queue', ...jsonRows('mlp', 32) });
      const viaRecord: number[] = [];
      const viaEvent: number[] = [];
      for (let i = 0; i < CONFIG.queue_jobs; i++) {
        await new Promise((r) => setTimeout(r, 300)); // the worker back to waiting on the queue
        const wall0 = Date.now();
        const t0 = performance.now();
        const job = await api(stack, 'POST', `/v1/models/${fits.mlp.model_id}/fit`, { dataset_id: ds.id, epochs: 1, batch_size: 32 });
        const watch = watchJob(stack, reader, job.id);
        await watch.done;
        await watch.close();
        const running = watch.ws.find((a) => a.type === 'status' && a.event.status === 'running');
        const rec = await api(stack, 'GET', `/v1/jobs/${job.id}`);
        viaRecord.push(Date.parse(rec.started_at) - wall0);
        if (running) viaEvent.push(running.at - t0);
      }
      queue = {
        p50_ms: median(viaRecord), max_ms: Math.max(...viaRecord), samples: viaRecord,
        running_event_p50_ms: round(median(viaEvent), 1), first_fit_ms: fits.mlp.queue_ms,
      };
      log('queue', queue);
    }

    // Predict latency: 1 instance per request, real HTTP (keep-alive), 1 and N concurrent clients.
    if (!skip('predict')) {
      const body = JSON.stringify({ instances: jsonRows('mlp', 1).x });
      const url = `${stack.url}/v1/models/${fits.mlp.model_id}/predict`;
      const once = async (): Promise<number> => {
        const t0 = performance.now();
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`predict ${res.status}`);
        return performance.now() - t0;
      };
      for (let i = 0; i < 20; i++) await once(); // the model loaded into the tensor thread's cache
      const run = async (clients: number, each: number) => {
        const lat: number[] = [];
        const t0 = performance.now();
        await Promise.all(Array.from({ length: clients }, async () => {
          for (let j = 0; j < each; j++) lat.push(await once());
        }));
        const seconds = (performance.now() - t0) / 1000;
        return { clients, requests: lat.length, p50_ms: round(percentile(lat, 50), 2), p99_ms: round(percentile(lat, 99), 2), requests_per_s: round(lat.length / seconds, 1) };
      };
      predictFig = { one: await run(1, CONFIG.predict_requests), many: await run(CONFIG.predict_clients, CONFIG.predict_per_client) };
      log('predict', predictFig);
    }
  } finally {
    reader.disconnect();
    await stack.close();
  }
}

// Results.
let commit = 'unknown';
try {
  commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  // Earlier results lying uncommitted do not make the code dirty.
  if (execSync("git status --porcelain -- . ':!bench/results' ':!bench/results.jsonl'", { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()) commit += '+dirty';
} catch { /* not a checkout */ }
const training = Object.fromEntries(KEYS.map((key) => {
  const ours = rateOf('engine', key);
  const st = rateOf('stock', key);
  return [key, {
    model: MODELS[key].title,
    engine_samples_per_s: ours === undefined ? null : round(ours, 1), engine_runs: rates.engine?.[key]?.map((x) => round(x, 1)) ?? [],
    stock: st === undefined ? null : { backend: stockBackend[key], samples_per_s: round(st, 2), runs: rates.stock?.[key]?.map((x) => round(x, 2)) },
    engine_gain: ours !== undefined && st !== undefined ? round(ours / st, 2) : null,
    service: (service as Record<string, unknown>)[key] ?? null,
  }];
}));
// The MLP against stock tfjs as a tfjs user trains (model.fit on stock wasm), and the dense fast path's own share.
const mlpEngine = rateOf('engine', 'mlp');
const stockModelFit = rateOf('stock', 'mlp_model_fit');
const tfjsPath = rateOf('engine', 'mlp_tfjs_path');
const mlpExtra = {
  stock_model_fit: stockModelFit === undefined ? null : { backend: 'wasm', samples_per_s: round(stockModelFit, 1), runs: rates.stock?.mlp_model_fit?.map((x) => round(x, 1)) },
  engine_gain_vs_model_fit: mlpEngine !== undefined && stockModelFit !== undefined ? round(mlpEngine / stockModelFit, 2) : null,
  engine_tfjs_path: tfjsPath === undefined ? null : { samples_per_s: round(tfjsPath, 1), runs: rates.engine?.mlp_tfjs_path?.map((x) => round(x, 1)) },
  dense_path_gain: mlpEngine !== undefined && tfjsPath !== undefined ? round(mlpEngine / tfjsPath, 2) : null,
};
Object.assign(training.mlp as Record<string, unknown>, mlpExtra);
const threadsName = `threads${CONFIG.threads}`;
const threads = rates[threadsName] ? {
  threads: CONFIG.threads, backend: childBackends[threadsName],
  ...Object.fromEntries((['mlp', 'cnn'] as ModelKey[]).map((k) => [k, { samples_per_s: round(rateOf(threadsName, k)!, 1), one_thread: round(rateOf('engine', k)!, 1), ratio: round(rateOf(threadsName, k)! / rateOf('engine', k)!, 2) }])),
} : { skipped: true };
// Ingest and training from disk (bench/datasets.ts): large files, about 2.5 minutes.
const datasets = skip('datasets') ? { skipped: 'BENCH_SKIP' } : await runDatasetsBench({ log: (...a: unknown[]) => console.error('[datasets]', ...a) });
const cpu = os.cpus();
const result = {
  date: new Date().toISOString(),
  commit,
  machine: { cpus: cpu.length, cpu_model: cpu[0]?.model ?? 'unknown', memory_gb: round(os.totalmem() / 2 ** 30, 1), node: process.version, platform: `${os.platform()} ${os.arch()}`, load_avg_1m: round(os.loadavg()[0]!, 2) },
  backend,
  config: { ...CONFIG, rounds: ROUNDS, stock_cpu_rounds: STOCK_CPU_ROUNDS },
  training,
  tfjs_model_fit_mlp: { ours_samples_per_s: round(median(ours), 1), model_fit_samples_per_s: round(median(theirs), 1), ratio: round(median(ours) / median(theirs), 2) },
  threads,
  build: { lstm512x2_seconds: round(buildSeconds, 3), lstm512x2_shapes_only_seconds: round(inspectSeconds, 4) },
  queue_latency: queue,
  ws_lag: wsLag,
  predict: predictFig,
  datasets,
  ...(stockNote ? { stock_note: stockNote } : {}),
  ...(childErrors.length ? { errors: childErrors } : {}),
  seconds: round((performance.now() - started) / 1000, 1),
};

// The table.
const fmt = (x: unknown, d = 0) => (typeof x === 'number' && Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '-');
const rows: string[][] = [];
const mark = (ok: boolean | null) => (ok === null ? '' : ok ? 'yes' : 'no');
const targets: Record<ModelKey, number> = { mlp: 5, cnn: 40, lstm: 20 };
for (const key of KEYS) {
  const t = training[key] as { engine_samples_per_s: number | null; stock: { backend: string; samples_per_s: number } | null; engine_gain: number | null };
  const label = key === 'mlp' ? 'MLP train samples/s: engine vs our loop on stock wasm' : `${key.toUpperCase()} train samples/s: engine vs stock ${stockBackend[key]}`;
  rows.push([label, fmt(t.engine_samples_per_s), t.stock ? fmt(t.stock.samples_per_s, t.stock.samples_per_s < 100 ? 1 : 0) : '-',
    t.engine_gain === null ? '-' : `${fmt(t.engine_gain, 1)}x`, `>= ${targets[key]}x`, mark(t.engine_gain === null ? null : t.engine_gain >= targets[key])]);
}
if (mlpExtra.engine_gain_vs_model_fit !== null) {
  rows.splice(1, 0, ['MLP train samples/s: engine vs stock tfjs-wasm model.fit', fmt(mlpEngine), fmt(stockModelFit), `${fmt(mlpExtra.engine_gain_vs_model_fit, 1)}x`, '>= 5x', mark(mlpExtra.engine_gain_vs_model_fit >= 5)]);
}
if (mlpExtra.dense_path_gain !== null) rows.push(['MLP: dense fast path vs the engine\'s tfjs path', fmt(mlpEngine), fmt(tfjsPath), `${fmt(mlpExtra.dense_path_gain, 2)}x`, '', '']);
for (const key of KEYS) {
  const s = (service as Record<string, { samples: number; samples_per_s: number; bare_samples_per_s: number; overhead_pct: number; per_epoch_ms: number }>)[key];
  if (!s) continue;
  rows.push([`${key.toUpperCase()} via the service vs bare loop, samples/s (${fmt(s.samples)}-sample epochs; +${fmt(s.per_epoch_ms, 1)} ms/epoch)`, fmt(s.samples_per_s), fmt(s.bare_samples_per_s), `${fmt(s.overhead_pct, 1)}% overhead`, '<= 3%', mark(s.overhead_pct <= 3)]);
}
rows.push(['MLP: our fit loop vs tfjs model.fit, samples/s', fmt(median(ours)), fmt(median(theirs)), `${fmt(median(ours) / median(theirs), 2)}x`, '', '']);
for (const k of ['mlp', 'cnn'] as ModelKey[]) {
  const t = (threads as unknown as Record<string, { samples_per_s: number; one_thread: number; ratio: number }>)[k];
  if (t) rows.push([`${k.toUpperCase()}: ${CONFIG.threads} wasm threads vs 1, samples/s`, fmt(t.samples_per_s), fmt(t.one_thread), `${fmt(t.ratio, 2)}x`, '', '']);
}
rows.push(['LSTM(512) x 2 build, seconds', fmt(buildSeconds, 2), '', '', '< 1 s', mark(buildSeconds < 1)]);
rows.push(['LSTM(512) x 2 build for its shapes (API validation), seconds', fmt(inspectSeconds, 3), fmt(buildSeconds, 2), `${fmt(inspectSeconds / buildSeconds, 3)}x`, '', '']);
if (typeof queue.p50_ms === 'number') rows.push(['Queue latency POST fit -> running, ms (p50 / max)', `${fmt(queue.p50_ms)} / ${fmt(queue.max_ms)}`, '', '', '< 50 ms (p50)', mark((queue.p50_ms as number) < 50)]);
if (typeof wsLag.p50_ms === 'number') rows.push([`WebSocket event lag, ms (p50 / p99; ${wsLag.source})`, `${fmt(wsLag.p50_ms, 1)} / ${fmt(wsLag.p99_ms, 1)}`, '', '', '< 20 ms (p99)', mark((wsLag.p99_ms as number) < 20)]);
for (const p of [predictFig.one, predictFig.many] as Array<{ clients: number; p50_ms: number; p99_ms: number; requests_per_s: number } | undefined>) {
  if (p) rows.push([`Predict latency, ${p.clients} client${p.clients > 1 ? 's' : ''}, ms (p50 / p99)`, `${fmt(p.p50_ms, 1)} / ${fmt(p.p99_ms, 1)}`, `${fmt(p.requests_per_s)} req/s`, '', '', '']);
}
const header = ['Figure', 'Measured', 'Baseline (same run)', 'Ratio', 'Target', 'Met'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
const table = [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');

const dir = new URL('./results/', import.meta.url);
fs.mkdirSync(dir, { recursive: true });
const file = new URL(`${result.date.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')}.json`, dir);
fs.writeFileSync(file, `${JSON.stringify({ ...result, table }, null, 2)}\n`);
fs.appendFileSync(new URL('./results.jsonl', import.meta.url), `${JSON.stringify(result)}\n`);
console.log(`\n${MODELS.mlp.title}; ${MODELS.cnn.title}; ${MODELS.lstm.title}. Batch ${CONFIG.batch_size}, Adam.`);
console.log(`${result.machine.cpus} x ${result.machine.cpu_model}, ${result.machine.memory_gb} GiB, Node ${process.version}, load ${result.machine.load_avg_1m}, backend ${backend.backend} (${backend.device}), ${result.date}, ${commit}\n`);
console.log(table);
console.log(`\nwritten: ${fileURLToPath(file)} (and appended to bench/results.jsonl), ${result.seconds} s`);
process.exit(0);
