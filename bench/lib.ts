/**
 * What the bench's parts share: the three models, their (seeded, random) data, and a training
 * rate measured through the workers' own fit loop on whatever backend and kernels are current.
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32, withSeededRandom } from '../src/engine/seeded-random.ts';
import { buildModel } from '../src/model-spec/build-model.ts';
import { withZeroWeights } from '../src/engine/layer-weights.ts';
import { resolveCompile } from '../src/model-spec/compile.ts';
import { fit } from '../workers/train-loop.ts';

export type ModelKey = 'mlp' | 'cnn' | 'lstm';

export interface BenchModel {
  title: string;
  spec: unknown;
  /** Per-sample x shape. */
  shape: number[];
  /** x values: uniform [0, 1) floats, or integer token ids below this. */
  vocab?: number;
}

export const COMPILE = { optimizer: 'adam', loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] };
export const CLASSES = 10;

export const MODELS: Record<ModelKey, BenchModel> = {
  mlp: {
    title: 'MLP 784-64-10',
    shape: [784],
    spec: { type: 'sequential', layers: [
      { type: 'Dense', units: 64, activation: 'relu', input_shape: [784] },
      { type: 'Dense', units: 10, activation: 'softmax' }] },
  },
  cnn: {
    title: 'CNN 28x28x1 conv8-pool-conv16-pool-dense10',
    shape: [28, 28, 1],
    spec: { type: 'sequential', layers: [
      { type: 'Conv2D', filters: 8, kernel_size: 3, activation: 'relu', input_shape: [28, 28, 1] },
      { type: 'MaxPooling2D', pool_size: 2 },
      { type: 'Conv2D', filters: 16, kernel_size: 3, activation: 'relu' },
      { type: 'MaxPooling2D', pool_size: 2 },
      { type: 'Flatten' },
      { type: 'Dense', units: 10, activation: 'softmax' }] },
  },
  lstm: {
    title: 'Embedding(1000,32)+LSTM(64)+dense10, 40 tokens',
    shape: [40],
    vocab: 1000,
    spec: { type: 'sequential', layers: [
      { type: 'Embedding', input_dim: 1000, output_dim: 32, input_length: 40 },
      { type: 'LSTM', units: 64 },
      { type: 'Dense', units: 10, activation: 'softmax' }] },
  },
};

export type Column = { shape: number[]; data: Float32Array };

/** n samples of a model's data, the same for a given seed. */
export function makeData(key: ModelKey, n: number, seed = 1): { x: Column[]; y: Column[] } {
  const m = MODELS[key];
  const random = mulberry32(seed);
  const size = m.shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n * size);
  for (let i = 0; i < data.length; i++) data[i] = m.vocab ? Math.floor(random() * m.vocab) : random();
  const labels = new Float32Array(n);
  for (let i = 0; i < n; i++) labels[i] = Math.floor(random() * CLASSES);
  return { x: [{ shape: m.shape, data }], y: [{ shape: [], data: labels }] };
}

function head(cols: Column[], n: number, k: number): Column[] {
  return cols.map((c) => ({ shape: c.shape, data: c.data.subarray(0, (c.data.length / n) * k) }));
}

/**
 * Training samples/s of our fit loop (what the workers run) on the current backend: a model
 * built with seed 1, a warm-up fit on `warmup` samples, then `reps` timed one-epoch fits of n
 * samples (median). `denseFastPath: false` keeps the MLP off the dense fast path.
 */
export async function trainRate(key: ModelKey, n: number, opts: { batchSize?: number; reps?: number; warmup?: number; denseFastPath?: boolean } = {}): Promise<{ samples_per_s: number; runs: number[] }> {
  const batchSize = opts.batchSize ?? 32;
  const { x, y } = makeData(key, n);
  const model = withSeededRandom(1, () => buildModel(MODELS[key].spec));
  const compiled = resolveCompile(COMPILE, [{ name: 'out', shape: [CLASSES] }]);
  try {
    const w = Math.min(n, opts.warmup ?? batchSize);
    const denseFastPath = opts.denseFastPath ?? true;
    await fit(model, compiled, ['out'], head(x, n, w), head(y, n, w), { epochs: 1, batchSize: Math.min(batchSize, w), denseFastPath });
    const runs: number[] = [];
    for (let r = 0; r < (opts.reps ?? 3); r++) {
      const t0 = performance.now();
      await fit(model, compiled, ['out'], x, y, { epochs: 1, batchSize, seed: r, denseFastPath });
      runs.push(n / ((performance.now() - t0) / 1000));
    }
    return { samples_per_s: median(runs), runs: runs.map((r) => round(r, 1)) };
  } finally {
    model.dispose();
  }
}

/**
 * The service's baseline: one fit of `epochs` epochs (seed 1, as the bench's fit jobs) through
 * the bare loop, its rate taken from the first to the last epoch end, as the service's is from
 * its epoch events. (Epochs differ in speed: each has its own order, and rows gathered from a
 * large dataset cost what their order makes them cost, so the baseline runs the same epochs.)
 */
export async function fitEpochsRate(key: ModelKey, n: number, epochs: number, batchSize = 32): Promise<number> {
  const { x, y } = makeData(key, n);
  const model = withSeededRandom(1, () => buildModel(MODELS[key].spec));
  const compiled = resolveCompile(COMPILE, [{ name: 'out', shape: [CLASSES] }]);
  const ends: number[] = [];
  try {
    await fit(model, compiled, ['out'], x, y, { epochs, batchSize, seed: 1 }, { onEpochEnd: () => { ends.push(performance.now()); } });
  } finally {
    model.dispose();
  }
  return (n * (ends.length - 1)) / ((ends.at(-1)! - ends[0]!) / 1000);
}

/** The MLP through tfjs-layers' own model.fit (same backend, same data, batch size), after a warm-up fit on `warmup` samples. */
export async function tfjsFitRate(n: number, batchSize = 32, reps = 3, warmup = batchSize): Promise<number> {
  const { x, y } = makeData('mlp', n);
  const model = withSeededRandom(1, () => buildModel(MODELS.mlp.spec));
  model.compile({ optimizer: tf.train.adam(0.001), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  const xt = tf.tensor2d(x[0]!.data, [n, 784]);
  const yt = tf.tensor1d(y[0]!.data);
  try {
    const w = Math.min(n, warmup);
    const [xw, yw] = [xt.slice(0, w), yt.slice(0, w)];
    await model.fit(xw, yw, { epochs: 1, batchSize, verbose: 0 });
    tf.dispose([xw, yw]);
    const runs: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await model.fit(xt, yt, { epochs: 1, batchSize, verbose: 0 });
      runs.push(n / ((performance.now() - t0) / 1000));
    }
    return median(runs);
  } finally {
    tf.dispose([xt, yt]);
    model.dispose();
  }
}

/**
 * Seconds to build a two-layer LSTM(512) on [20, 64] (the fast Orthogonal initializer's case);
 * `shapesOnly`: as the API builds it to validate it, with zero weights and no initializer.
 */
export function lstm512BuildSeconds(reps = 3, shapesOnly = false): number {
  const spec = { type: 'sequential', layers: [
    { type: 'LSTM', units: 512, return_sequences: true, input_shape: [20, 64] },
    { type: 'LSTM', units: 512 },
    { type: 'Dense', units: 10, activation: 'softmax' }] };
  const runs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const m = shapesOnly ? withZeroWeights(() => buildModel(spec)) : buildModel(spec);
    runs.push((performance.now() - t0) / 1000);
    m.dispose();
  }
  return median(runs);
}

export function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The p-th percentile (0-100), nearest rank. */
export function percentile(xs: number[], p: number): number {
  const s = xs.slice().sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function round(x: number, digits = 0): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${raw} must be an integer >= 0`);
  return n;
}

/** The header of an .npy file (format 1.0, C order) of `shape` and numpy dtype `descr` ('<f4', '<i4'). */
export function npyHeader(descr: string, shape: number[]): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + header.length + 1) % 64 !== 0) header += ' ';
  header += '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1')]);
}
