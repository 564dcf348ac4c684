/**
 * Datasets larger than memory, measured through the real service (API in this process, a
 * worker process, an embedded Redis), one JSON line on stdout:
 *
 * - ingest MB/s of a streamed CSV upload and of a multipart .npy upload (body bytes / seconds);
 * - the API's peak RSS growth during those uploads (this process: API + client streams);
 * - the worker's peak RSS growth while it trains from disk on a dataset several times its
 *   DATASET_MEMORY_BYTES budget (BENCH_TRAIN_SECONDS of a fit, then cancelled);
 * - samples/s of the batch reader alone (WindowReader over the stored files, shuffled epoch
 *   order, batch 128) against the worker's training samples/s on the same data (from its
 *   batch events): reader_vs_train.
 *
 * `node --import tsx bench/datasets.ts`, or runDatasetsBench() from bench/run.ts.
 * BENCH_DATASET_MB (512): the .npy dataset (float32 x [N, 128] and int32 y);
 * BENCH_CSV_MB (128): the CSV (32 features); BENCH_WORKER_BUDGET_MB (64);
 * BENCH_TRAIN_SECONDS (30). Targets (issue 5): npy >= 100 MB/s, CSV >= 40 MB/s,
 * API RSS growth < 256 MB, worker RSS growth < 400 MB, reader >= 3x training.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { startStack, waitForJob, waitForWorkers, type Stack } from '../test/helpers/stack.ts';
import { watchJob } from '../test/helpers/ws.ts';
import { mulberry32 } from '../src/engine/seeded-random.ts';
import { npyHeader } from './lib.ts';
import { paths } from '../src/storage/paths.ts';
import { float32RowBytes, type DatasetRecord } from '../src/datasets/dataset-record.ts';
import { seededEpochPlan, shuffleLayout } from '../src/datasets/order.ts';
import { FileCache, WindowReader } from '../src/datasets/reader.ts';

const MB = 1024 * 1024;
const FEATURES = 128;
const CSV_FEATURES = 32;

export interface DatasetsBenchOptions {
  datasetMb?: number;
  csvMb?: number;
  workerBudgetMb?: number;
  trainSeconds?: number;
  log?: (...args: unknown[]) => void;
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** Writes an .npy header for `shape` and `descr`, then `fill` chunks. */
function writeNpy(file: string, descr: string, shape: number[], chunks: Iterable<Uint8Array>): void {
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, npyHeader(descr, shape));
  for (const c of chunks) fs.writeSync(fd, c);
  fs.closeSync(fd);
}

/** x: N x 128 float32 in [0, 1); y: a class 0..9 from the first features (learnable). */
function makeNpy(dir: string, rows: number): { x: string; y: string; bytes: number } {
  const r = mulberry32(1);
  const CH = 8192;
  const labels = new Int32Array(rows);
  const x = path.join(dir, 'x.npy');
  writeNpy(x, '<f4', [rows, FEATURES], (function* () {
    for (let i = 0; i < rows; i += CH) {
      const n = Math.min(CH, rows - i);
      const a = new Float32Array(n * FEATURES);
      for (let k = 0; k < a.length; k++) a[k] = r();
      for (let j = 0; j < n; j++) labels[i + j] = Math.min(9, Math.floor((a[j * FEATURES]! + a[j * FEATURES + 1]!) * 5));
      yield new Uint8Array(a.buffer);
    }
  })());
  const y = path.join(dir, 'y.npy');
  writeNpy(y, '<i4', [rows], [new Uint8Array(labels.buffer)]);
  return { x, y, bytes: fs.statSync(x).size + fs.statSync(y).size };
}

function makeCsv(dir: string, targetBytes: number): { file: string; bytes: number; rows: number } {
  const file = path.join(dir, 'data.csv');
  const fd = fs.openSync(file, 'w');
  const r = mulberry32(2);
  let bytes = 0;
  let rows = 0;
  const header = `${Array.from({ length: CSV_FEATURES }, (_, i) => `f${i}`).join(',')},label\n`;
  fs.writeSync(fd, header);
  bytes += header.length;
  while (bytes < targetBytes) {
    const lines: string[] = [];
    for (let j = 0; j < 2000; j++) {
      const v = Array.from({ length: CSV_FEATURES }, () => (r() * 100).toFixed(4));
      lines.push(`${v.join(',')},${rows % 10}`);
      rows++;
    }
    const text = `${lines.join('\n')}\n`;
    fs.writeSync(fd, text);
    bytes += text.length;
  }
  fs.closeSync(fd);
  return { file, bytes, rows };
}

/** Streams `parts` (buffers and files) as one request body; resolves with the answer and seconds. */
function upload(stack: Stack, urlPath: string, contentType: string, parts: Array<Buffer | { file: string }>): Promise<{ status: number; body: any; seconds: number; bytes: number }> {
  const url = new URL(stack.url);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let bytes = 0;
    const req = http.request({ host: url.hostname, port: url.port, method: 'POST', path: urlPath, headers: { 'content-type': contentType, 'transfer-encoding': 'chunked' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || 'null'), seconds: (performance.now() - t0) / 1000, bytes }));
    });
    req.on('error', reject);
    (async () => {
      for (const p of parts) {
        if (Buffer.isBuffer(p)) {
          bytes += p.length;
          if (!req.write(p)) await new Promise((r) => req.once('drain', r));
          continue;
        }
        for await (const chunk of fs.createReadStream(p.file, { highWaterMark: 1 << 20 })) {
          bytes += (chunk as Buffer).length;
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        }
      }
      req.end();
    })().catch(reject);
  });
}

/** Peak RSS above the value at start, sampled every 20 ms while `run` runs. */
async function peakRss<T>(read: () => number, run: () => Promise<T>): Promise<{ value: T; growthMb: number }> {
  const base = read();
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, read());
  }, 20);
  try {
    const value = await run();
    peak = Math.max(peak, read());
    return { value, growthMb: (peak - base) / MB };
  } finally {
    clearInterval(timer);
  }
}

function procRss(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

export async function runDatasetsBench(opts: DatasetsBenchOptions = {}): Promise<Record<string, unknown>> {
  const log = opts.log ?? ((...a: unknown[]) => console.error('[datasets]', ...a));
  const datasetMb = opts.datasetMb ?? Number(process.env.BENCH_DATASET_MB ?? 512);
  const csvMb = opts.csvMb ?? Number(process.env.BENCH_CSV_MB ?? 128);
  const budgetMb = opts.workerBudgetMb ?? Number(process.env.BENCH_WORKER_BUDGET_MB ?? 64);
  const trainSeconds = opts.trainSeconds ?? Number(process.env.BENCH_TRAIN_SECONDS ?? 30);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-bench-ds-'));
  const rows = Math.floor((datasetMb * MB) / (FEATURES * 4 + 4));
  log(`writing ${datasetMb} MB of .npy (${rows} rows x ${FEATURES}) and ${csvMb} MB of CSV`);
  const npyFiles = makeNpy(work, rows);
  const csv = makeCsv(work, csvMb * MB);
  const stack = await startStack({ workers: 1, env: { DATASET_MEMORY_BYTES: String(budgetMb * MB), MAX_UPLOAD_BYTES: String(64 * 1024 * MB), LOG_LEVEL: 'warn' } });
  try {
    await waitForWorkers(stack.app, 1);
    // 1. CSV ingest.
    const csvUp = await peakRss(() => process.memoryUsage().rss, () => upload(stack, '/v1/datasets?name=bench-csv&label=label', 'text/csv', [{ file: csv.file }]));
    if (csvUp.value.status !== 201) throw new Error(`CSV upload: ${csvUp.value.status} ${JSON.stringify(csvUp.value.body)}`);
    const csvMbS = csv.bytes / MB / csvUp.value.seconds;
    log(`CSV: ${round(csv.bytes / MB)} MB in ${round(csvUp.value.seconds, 2)} s = ${round(csvMbS)} MB/s; API RSS +${round(csvUp.growthMb)} MB`);

    // 2. npy ingest (multipart, streamed from the files).
    const boundary = '----ktsbench';
    const partHead = (name: string) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${name}.npy"\r\nContent-Type: application/octet-stream\r\n\r\n`);
    const npyUp = await peakRss(() => process.memoryUsage().rss, () => upload(stack, '/v1/datasets?name=bench-npy', `multipart/form-data; boundary=${boundary}`, [
      partHead('x'), { file: npyFiles.x }, Buffer.from('\r\n'), partHead('y'), { file: npyFiles.y }, Buffer.from(`\r\n--${boundary}--\r\n`),
    ]));
    if (npyUp.value.status !== 201) throw new Error(`npy upload: ${npyUp.value.status} ${JSON.stringify(npyUp.value.body)}`);
    const npyMbS = npyFiles.bytes / MB / npyUp.value.seconds;
    log(`npy: ${round(npyFiles.bytes / MB)} MB in ${round(npyUp.value.seconds, 2)} s = ${round(npyMbS)} MB/s; API RSS +${round(npyUp.growthMb)} MB`);
    const ds = npyUp.value.body as { id: string; samples: number };

    // 3. The worker trains from disk; its RSS is sampled from /proc.
    const model = await (await fetch(`${stack.url}/v1/models`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({
      name: 'bench-mlp',
      spec: { type: 'sequential', layers: [{ type: 'Dense', units: 64, activation: 'relu', input_shape: [FEATURES] }, { type: 'Dense', units: 10, activation: 'softmax' }] },
      compile: { optimizer: 'adam', loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] },
    }) })).json() as { id: string };
    const pid = stack.workers[0]!.pid!;
    const batchSize = 128;
    const trained = await peakRss(() => procRss(pid), async () => {
      const job = await (await fetch(`${stack.url}/v1/models/${model.id}/fit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dataset_id: ds.id, epochs: 1, batch_size: batchSize, seed: 1 }) })).json() as { id: string };
      const watch = watchJob(stack.url, job.id);
      await watch.until((e) => e.type === 'batch', 120);
      const first = watch.events.find((e) => e.type === 'batch');
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, trainSeconds * 1000));
      const last = [...watch.events].reverse().find((e) => e.type === 'batch');
      const seconds = (performance.now() - t0) / 1000;
      await fetch(`${stack.url}/v1/jobs/${job.id}/cancel`, { method: 'POST' });
      await waitForJob(stack.app, job.id, {}, 120);
      watch.socket.close();
      return { samplesPerS: ((last.batch - first.batch) * batchSize) / seconds };
    });
    log(`worker: trained ${round(trained.value.samplesPerS)} samples/s from disk; RSS +${round(trained.growthMb)} MB (budget ${budgetMb} MB, dataset ${datasetMb} MB)`);

    // 4. The reader alone, on the stored files (shuffled epoch order, as the worker reads them).
    const dir = paths.dataset(stack.config.dataDir, 'default', ds.id);
    const rec = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as DatasetRecord;
    const cols = [...rec.x_columns, ...rec.y_columns];
    const plan = seededEpochPlan(shuffleLayout(rec.samples, float32RowBytes(cols), stack.config.datasets.shuffleWindowBytes), 1, 0);
    const files = new FileCache();
    const reader = new WindowReader(cols.map((c) => ({ shape: c.shape, stored: { path: path.join(dir, c.file), dtype: c.dtype, first: 0, rows: rec.samples } })), plan, files);
    const t0 = performance.now();
    let read = 0;
    let pending = reader.batch(0, batchSize);
    for (let start = 0; start < rec.samples && performance.now() - t0 < 20_000; start += batchSize) {
      const end = Math.min(rec.samples, start + batchSize);
      await pending;
      if (end < rec.samples) pending = reader.batch(end, Math.min(rec.samples, end + batchSize));
      read += end - start;
    }
    const readerRate = read / ((performance.now() - t0) / 1000);
    await reader.release();
    await files.close();
    log(`reader: ${round(readerRate)} samples/s (${round(readerRate / trained.value.samplesPerS, 2)}x training)`);

    return {
      bench: 'datasets',
      date: new Date().toISOString(),
      csv_mb: round(csv.bytes / MB),
      csv_ingest_mb_s: round(csvMbS),
      npy_mb: round(npyFiles.bytes / MB),
      npy_ingest_mb_s: round(npyMbS),
      api_rss_growth_mb: round(Math.max(csvUp.growthMb, npyUp.growthMb)),
      dataset_mb: datasetMb,
      worker_budget_mb: budgetMb,
      worker_rss_growth_mb: round(trained.growthMb),
      train_samples_s: round(trained.value.samplesPerS),
      reader_samples_s: round(readerRate),
      reader_vs_train: round(readerRate / trained.value.samplesPerS, 2),
      targets_met: {
        npy_ingest: npyMbS >= 100,
        csv_ingest: csvMbS >= 40,
        api_rss: Math.max(csvUp.growthMb, npyUp.growthMb) < 256,
        worker_rss: trained.growthMb < 400,
        reader: readerRate >= 3 * trained.value.samplesPerS,
      },
    };
  } finally {
    await stack.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await runDatasetsBench();
  console.log(JSON.stringify(result));
  process.exit(0);
}
