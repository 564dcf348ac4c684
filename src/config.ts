import path from 'node:path';

/** One typed, validated configuration, read from the environment once at boot. */
export interface Config {
  host: string;
  port: number;
  /** Unset: `npm start` runs an embedded redis-server and fills this in. */
  redisUrl?: string;
  dataDir: string;
  /** tenant by key; empty = open mode (loopback only). */
  apiKeys: Map<string, string>;
  workers: number;
  /** Prefix of every BullMQ and metadata key, so several deployments (or test files) can share a Redis. */
  keyPrefix: string;
  tfBackend?: string;
  /** TF_WASM_THREADS, validated (the engine reads it from the environment). */
  tfWasmThreads: string;
  tfWasmKernels: 'stock' | 'ours';
  logLevel: string;
  limits: {
    bodyBytes: number;
    datasetSamples: number;
    datasetValues: number;
    epochs: number;
    batchSize: number;
    predictInstances: number;
    modelParams: number;
    modelLayers: number;
    wsClientsPerJob: number;
    /** Streamed uploads (CSV, .npy, .npz): bytes received (and after gunzip), rows, values per row. */
    uploadBytes: number;
    uploadRows: number;
    uploadColumns: number;
  };
  /** Datasets and training from disk (workers). */
  datasets: DatasetRuntimeConfig;
  /** How many loaded models the inference thread keeps. */
  modelCacheSize: number;
  /** BullMQ job lock and stalled-check interval: how soon a dead worker's job is picked up again. */
  workerLockMs: number;
  /** Starts a job gets (a worker dying counts as one) before it fails. */
  jobAttempts: number;
  /** A fit checkpoints after every epoch and, inside a long epoch, this often. */
  checkpointIntervalMs: number;
}

/** What a worker needs to read datasets: how much it loads whole, and the shuffle window for larger ones. */
export interface DatasetRuntimeConfig {
  /** Datasets up to this many bytes (as float32) are loaded whole; larger ones are read from disk in batches. */
  memoryBytes: number;
  /** Bytes (as float32) of one shuffle window: datasets with more rows than fit in it shuffle by blocks and windows. */
  shuffleWindowBytes: number;
}

export const CONFIG_TABLE: Array<{ env: string; default: string; description: string }> = [
  { env: 'HOST', default: '127.0.0.1', description: 'Address the API binds. A non-loopback address needs API_KEYS.' },
  { env: 'PORT', default: '8080', description: 'API port.' },
  { env: 'REDIS_URL', default: '(unset)', description: 'Redis to use. Unset: `npm start` runs a supervised redis-server under DATA_DIR/redis.' },
  { env: 'DATA_DIR', default: './data', description: 'Blob store: datasets and model weights. Shared by the API and every worker.' },
  { env: 'API_KEYS', default: '(unset)', description: '`tenant:key,tenant2:key2`. Unset: open mode, one tenant "default", loopback only.' },
  { env: 'WORKERS', default: '1', description: 'Training worker processes `npm start` supervises (0 for none).' },
  { env: 'KEY_PREFIX', default: 'kts', description: 'Prefix for every Redis key and BullMQ queue.' },
  { env: 'TF_BACKEND', default: '(best present)', description: 'Force a backend: tensorflow-gpu, tensorflow, wasm or cpu.' },
  { env: 'TF_WASM_THREADS', default: '1', description: 'wasm backend: XNNPACK threads (1-8 or auto). More than 1 was slower for batch-32 training on 2 cores (docs/engine.md).' },
  { env: 'TF_WASM_KERNELS', default: '(ours)', description: 'wasm backend: `stock` turns off the engine\'s kernels (to measure against stock tfjs).' },
  { env: 'LOG_LEVEL', default: 'info', description: 'pino log level.' },
  { env: 'MAX_BODY_BYTES', default: '67108864', description: 'Largest request body (413 past it).' },
  { env: 'MAX_DATASET_SAMPLES', default: '1000000', description: 'Most samples in one JSON dataset.' },
  { env: 'MAX_DATASET_VALUES', default: '20000000', description: 'Most numbers in one JSON dataset (x and y together).' },
  { env: 'MAX_UPLOAD_BYTES', default: '17179869184', description: 'Largest streamed dataset upload (CSV, .npy, .npz), as sent and after gunzip (413 past it).' },
  { env: 'MAX_UPLOAD_ROWS', default: '100000000', description: 'Most rows (samples) in one streamed dataset upload (413 past it).' },
  { env: 'MAX_UPLOAD_COLUMNS', default: '1048576', description: 'Most columns of an uploaded CSV, or values per sample of an uploaded array (413 past it).' },
  { env: 'DATASET_MEMORY_BYTES', default: '268435456', description: 'A worker loads datasets up to this size (as float32) whole; larger ones are read from disk batch by batch.' },
  { env: 'SHUFFLE_WINDOW_BYTES', default: '67108864', description: 'Shuffle window (as float32) for datasets with more rows than fit in it: each epoch permutes blocks of rows, then shuffles rows within windows of this size. Keep it fixed while jobs run (it shapes the epoch order).' },
  { env: 'MAX_EPOCHS', default: '10000', description: 'Most epochs in one fit.' },
  { env: 'MAX_BATCH_SIZE', default: '65536', description: 'Largest batch_size.' },
  { env: 'MAX_PREDICT_INSTANCES', default: '10000', description: 'Most instances in one predict request.' },
  { env: 'MAX_MODEL_PARAMS', default: '50000000', description: 'Most parameters in one model.' },
  { env: 'MAX_MODEL_LAYERS', default: '1000', description: 'Most layers in one model.' },
  { env: 'MAX_WS_CLIENTS_PER_JOB', default: '100', description: 'Most WebSocket clients watching one job.' },
  { env: 'MODEL_CACHE_SIZE', default: '8', description: 'Loaded models the inference thread keeps (LRU).' },
  { env: 'WORKER_LOCK_MS', default: '30000', description: 'A running job\'s lock; a job whose worker died is picked up again, from its newest checkpoint, within about twice this.' },
  { env: 'JOB_ATTEMPTS', default: '3', description: 'Starts a job gets before it fails (a worker dying or an infrastructure error uses one; a shutdown does not).' },
  { env: 'CHECKPOINT_INTERVAL_MS', default: '300000', description: 'Besides after every epoch, a fit checkpoints inside an epoch this often.' },
];

function wasmThreads(raw: string | undefined): string {
  if (raw === undefined || raw === '' || raw === 'auto' || /^[1-8]$/.test(raw)) return raw || '1';
  throw new Error(`TF_WASM_THREADS must be 1 to 8 or auto, got "${raw}"`);
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name}=${raw} must be an integer >= ${min}`);
  return value;
}

/** The dataset settings alone (workers read them where they load data). */
export function loadDatasetConfig(env: NodeJS.ProcessEnv = process.env): DatasetRuntimeConfig {
  return {
    memoryBytes: int(env, 'DATASET_MEMORY_BYTES', 256 * 1024 * 1024, 0),
    shuffleWindowBytes: int(env, 'SHUFFLE_WINDOW_BYTES', 64 * 1024 * 1024, 1),
  };
}

/** Parses `tenant:key,tenant2:key2` into key -> tenant. */
export function parseApiKeys(raw: string | undefined): Map<string, string> {
  const keys = new Map<string, string>();
  for (const entry of (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const at = entry.indexOf(':');
    const tenant = entry.slice(0, at);
    const key = entry.slice(at + 1);
    if (at <= 0 || !key) throw new Error(`API_KEYS entry "${entry}" must be tenant:key`);
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(tenant)) throw new Error(`API_KEYS tenant "${tenant}" may use letters, digits, _ and - only`);
    keys.set(key, tenant);
  }
  return keys;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** Reads and validates the environment; throws with a message naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config: Config = {
    host: env.HOST || '127.0.0.1',
    port: int(env, 'PORT', 8080),
    redisUrl: env.REDIS_URL || undefined,
    dataDir: path.resolve(env.DATA_DIR || 'data'),
    apiKeys: parseApiKeys(env.API_KEYS),
    workers: int(env, 'WORKERS', 1),
    keyPrefix: env.KEY_PREFIX || 'kts',
    tfBackend: env.TF_BACKEND || undefined,
    // Read by src/engine where the backend starts; checked here so a bad value fails at startup.
    tfWasmThreads: wasmThreads(env.TF_WASM_THREADS),
    tfWasmKernels: env.TF_WASM_KERNELS === 'stock' ? 'stock' : 'ours',
    logLevel: env.LOG_LEVEL || 'info',
    limits: {
      bodyBytes: int(env, 'MAX_BODY_BYTES', 64 * 1024 * 1024, 1024),
      datasetSamples: int(env, 'MAX_DATASET_SAMPLES', 1_000_000, 1),
      datasetValues: int(env, 'MAX_DATASET_VALUES', 20_000_000, 1),
      epochs: int(env, 'MAX_EPOCHS', 10_000, 1),
      batchSize: int(env, 'MAX_BATCH_SIZE', 65_536, 1),
      predictInstances: int(env, 'MAX_PREDICT_INSTANCES', 10_000, 1),
      modelParams: int(env, 'MAX_MODEL_PARAMS', 50_000_000, 1),
      modelLayers: int(env, 'MAX_MODEL_LAYERS', 1000, 1),
      wsClientsPerJob: int(env, 'MAX_WS_CLIENTS_PER_JOB', 100, 1),
      uploadBytes: int(env, 'MAX_UPLOAD_BYTES', 16 * 1024 ** 3, 1),
      uploadRows: int(env, 'MAX_UPLOAD_ROWS', 100_000_000, 1),
      uploadColumns: int(env, 'MAX_UPLOAD_COLUMNS', 1_048_576, 1),
    },
    datasets: loadDatasetConfig(env),
    modelCacheSize: int(env, 'MODEL_CACHE_SIZE', 8, 1),
    workerLockMs: int(env, 'WORKER_LOCK_MS', 30_000, 1000),
    jobAttempts: int(env, 'JOB_ATTEMPTS', 3, 1),
    checkpointIntervalMs: int(env, 'CHECKPOINT_INTERVAL_MS', 300_000, 100),
  };
  if (config.apiKeys.size === 0 && !isLoopback(config.host)) {
    throw new Error(`HOST=${config.host} is not a loopback address: set API_KEYS, or the server would be open to the network`);
  }
  return config;
}
