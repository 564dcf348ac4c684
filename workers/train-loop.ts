/**
 * Our own Keras 2 style training loop (fit / evaluate / predict) over a tf.LayersModel.
 *
 * tfjs-layers' model.fit is not used: it rejects loss_weights, names metrics "acc",
 * and gives no per-batch control. Here each step is optimizer.minimize over
 * model.apply(xs, {training: true}); losses and metrics are accumulated on the
 * device and read back once per epoch (or when a batch hook asks for logs).
 * A chain of Dense layers on the engine's wasm backend takes the dense fast path instead
 * (src/engine/dense-trainer.ts): the same steps without a tfjs kernel per operation.
 */
import * as tf from '@tensorflow/tfjs';
import { SpecError } from '../src/errors.ts';
import { checkTargetShape } from '../src/model-spec/compile.ts';
import { lossFunction } from '../src/model-spec/losses.ts';
import { metricFunction } from '../src/model-spec/metrics.ts';
import { isStateful, statefulMetric, type StatefulMetric } from '../src/model-spec/stateful-metrics.ts';
import { makeOptimizer, setOptimizerState } from '../src/model-spec/optimizers.ts';
import type { ArrayColumn, CompiledConfig } from '../src/model-spec/types.ts';
import { loadDatasetConfig } from '../src/config.ts';
import { epochPlan, seededEpochPlan, sequentialLayout, sequentialPlan, shuffleLayout, type EpochPlan, type ShuffleLayout } from '../src/datasets/order.ts';
import { FileCache, WindowReader, type StoredSlice } from '../src/datasets/reader.ts';
import type { ColumnInfo } from '../src/datasets/dataset-record.ts';
import { adaptNormalizationLayers } from '../src/datasets/normalization.ts';
import { planDenseTraining } from '../src/engine/dense-plan.ts';
import { DenseTrainer } from '../src/engine/dense-trainer.ts';
import { denseKernelsSupported } from '../src/engine/dense-kernels.ts';
import { wasmTrainingKernelsRegistered } from '../src/engine/wasm-training-kernels.ts';

/** A column read from its file batch by batch (a dataset above DATASET_MEMORY_BYTES). */
export interface StoredColumn {
  /** Per-sample shape it is fed as. */
  shape: number[];
  stored: StoredSlice;
  /** The stored column's description (statistics for Normalization adapt). */
  info?: ColumnInfo;
}

/** What fit, evaluate and predict take: columns in memory, or read from disk. */
export type DataColumn = (ArrayColumn & { info?: ColumnInfo }) | StoredColumn;

export function isStoredColumn(c: DataColumn): c is StoredColumn {
  return 'stored' in c;
}

function columnRows(c: DataColumn): number {
  if (isStoredColumn(c)) return c.stored.rows;
  const row = prod(c.shape);
  return row === 0 ? 0 : c.data.length / row;
}

export interface FitOptions {
  epochs: number;
  batchSize: number;
  /** Fraction of the samples, taken from the end before any shuffling (Keras), held out for validation. */
  validationSplit?: number;
  /** Shuffle the training samples each epoch (default true, as Keras). */
  shuffle?: boolean;
  /** Epochs run from initialEpoch to epochs - 1; epoch numbers in hooks and history are absolute. */
  initialEpoch?: number;
  /** Single-output models: class index (as a string) -> weight of that class's samples in the loss. */
  classWeight?: Record<string, number>;
  /**
   * Seeds the shuffling: each epoch's order then depends only on (seed, epoch), so a run
   * resumed at any epoch and batch sees the same order. Without it the order comes from Math.random.
   */
  seed?: number;
  /** Continue a run from a checkpoint (LoopState) instead of from initialEpoch. */
  resume?: ResumeState;
  /**
   * Bytes (as float32, x and y rows together) of one shuffle window: more training rows than
   * fit in it are shuffled by blocks and windows (src/datasets/order.ts), in memory and from
   * disk alike. Default: SHUFFLE_WINDOW_BYTES.
   */
  shuffleWindowBytes?: number;
  /**
   * Keras's sample_weight: one non-negative weight per sample (shape [] or [1]). Every output's
   * per-sample loss is multiplied by it (times the class weight) and reduced as sum(loss * w) /
   * batch size; plain metrics are not weighted. validation_split takes its tail as the
   * validation weights.
   */
  sampleWeight?: DataColumn;
  /**
   * Keras's steps_per_epoch for array data: the batches of `epochs` passes over the data (each
   * pass shuffled by (seed, pass)) form one stream, and epoch e runs stream batches
   * [e*S, (e+1)*S). When the stream runs out, the epoch in progress ends there (with its
   * epoch-end logs and validation) and training stops (FitResult.outOfData). Default: the
   * batches of one pass (an epoch is one pass).
   */
  stepsPerEpoch?: number;
  /**
   * Whether a model the dense fast path can train (src/engine/dense-plan.ts) takes it, on the
   * engine's wasm backend, with the data in memory. Default true; false keeps the tfjs path
   * (tests and the bench compare the two).
   */
  denseFastPath?: boolean;
}

/** Where a run stands, enough to continue it in another process (with the model's weights). */
export interface ResumeState {
  /** The epoch to continue (absolute). */
  epoch: number;
  /** The first batch of that epoch still to run (0 at an epoch boundary). */
  batch: number;
  /** Sums of the train log values of the batches already run in this epoch (null at a boundary). */
  sums: number[] | null;
  /** Samples already run in this epoch. */
  seen: number;
  /** The optimizer's state (optimizerState(): getWeights() and its running products). */
  optimizerWeights?: Array<{ name: string; tensor: tf.Tensor }>;
}

/** What fit hands to its checkpoint hook. */
export interface LoopState extends Omit<ResumeState, 'optimizerWeights'> {
  optimizer: tf.Optimizer;
}

export interface FitHooks {
  /**
   * After every batch. `logs` reads the running epoch means (a GPU->CPU readback), so call it
   * only when it will be used, and before the returned promise settles.
   */
  onBatchEnd?: (epoch: number, batch: number, logs: () => Promise<Record<string, number>>) => Promise<void> | void;
  /** After every completed epoch, with the train and val_ means and the optimizer (for callbacks and checkpoints). */
  onEpochEnd?: (epoch: number, logs: Record<string, number>, loop: { optimizer: tf.Optimizer }) => Promise<void> | void;
  /** Checked after every batch: when true, onCheckpoint is called with the state after that batch. */
  checkpointDue?: () => boolean;
  /** Saves a mid-epoch checkpoint (the model's weights are the state's weights). */
  onCheckpoint?: (state: LoopState) => Promise<void>;
  /** Checked after every batch and every epoch: true stops there and fit returns the history so far. */
  shouldStop?: () => boolean;
}

export interface FitResult {
  /** Keras History.history: one value per completed epoch per key. */
  history: Record<string, number[]>;
  /** True when shouldStop ended the run. */
  stopped: boolean;
  /** Epochs completed by this call. */
  epochsRun: number;
  /**
   * With stepsPerEpoch: the data ran out (Keras: "Your input ran out of data; interrupting
   * training") at this epoch and batch of it; the epoch, when it ran any batch, is in the history.
   */
  outOfData?: { epoch: number; batch: number; batchesPerPass: number; stepsPerEpoch: number };
  /** How the steps ran: the dense fast path, or tfjs kernels (with why not the fast path, when asked for). */
  engine: { path: 'dense' | 'tfjs'; reason?: string };
}

type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

/** Everything a step needs, built once per fit/evaluate from the compiled config. */
interface StepFns {
  losses: LossFn[];
  weights: number[];
  /** [output index, per-sample metric fn] in log order (null for a confusion-matrix metric, logged from its counts). */
  metrics: Array<[number, LossFn | null]>;
  /** The log keys, in Keras order: loss, <out>_loss (several outputs), metrics by output. */
  keys: string[];
  /** Precision / recall / AUC: their counts follow the key values in the step vector, summed unscaled. */
  stateful: Array<{ keyIndex: number; output: number; metric: StatefulMetric; offset: number }>;
  /** Length of the step vector: one value per key, then every stateful metric's counts. */
  width: number;
}

/** What each step vector entry is multiplied by when summed: means by the batch size, counts by 1. */
function stepScale(fns: StepFns, batchSize: number): tf.Tensor1D {
  const counts = fns.width - fns.keys.length;
  return tf.concat([tf.fill([fns.keys.length], batchSize), tf.ones([counts])]) as tf.Tensor1D;
}

function fail(path: string, message: string, code: 'FIT_OPTIONS_INVALID' | 'DATASET_MISMATCH' | 'DATASET_INVALID' = 'FIT_OPTIONS_INVALID'): never {
  throw new SpecError(path, message, code);
}

function prod(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function buildStepFns(compiled: CompiledConfig, outputNames: string[]): StepFns {
  const multi = outputNames.length > 1;
  const keys = ['loss'];
  if (multi) for (const name of outputNames) keys.push(`${name}_loss`);
  const metrics: Array<[number, LossFn | null]> = [];
  const stateful: StepFns['stateful'] = [];
  let counts = 0;
  compiled.metrics.forEach((list, i) => {
    for (const m of list) {
      if (isStateful(m)) {
        const metric = statefulMetric(m);
        stateful.push({ keyIndex: keys.length, output: i, metric, offset: counts });
        counts += metric.size;
        metrics.push([i, null]);
      } else {
        metrics.push([i, metricFunction(m)]);
      }
      keys.push(multi ? `${outputNames[i]}_${m.key}` : m.key);
    }
  });
  return {
    losses: compiled.losses.map((l) => lossFunction(l)),
    weights: compiled.loss_weights.map((w) => w ?? 1),
    metrics,
    keys,
    stateful,
    width: keys.length + counts,
  };
}

/** Sample count shared by every column; throws when they disagree or a column is malformed. */
function sampleCount(cols: DataColumn[], what: 'x' | 'y'): number {
  let n = -1;
  cols.forEach((col, i) => {
    const row = prod(col.shape);
    if (!isStoredColumn(col) && (row === 0 || col.data.length % row !== 0)) fail(`${what}[${i}]`, `column data of ${col.data.length} values does not divide into samples of shape [${col.shape.join(', ')}]`, 'DATASET_INVALID');
    const count = columnRows(col);
    if (n >= 0 && count !== n) fail(`${what}[${i}]`, `has ${count} samples but the others have ${n}`, 'DATASET_MISMATCH');
    n = count;
  });
  return Math.max(n, 0);
}

/**
 * The per-sample shape a column is fed as, for a model input of shape `want` (no batch dim):
 * its own when it fits (null matches anything), with a trailing 1 added or dropped when
 * only that differs (Keras expands 1-D data); null when it does not fit.
 */
function feedShape(col: number[], want: Array<number | null>): number[] | null {
  const eq = (a: number[]) => a.length === want.length && want.every((d, i) => d === null || d === a[i]);
  if (eq(col)) return col;
  if (eq([...col, 1])) return [...col, 1];
  if (col.length > 0 && col[col.length - 1] === 1 && eq(col.slice(0, -1))) return col.slice(0, -1);
  return null;
}

/** Checks x against the model inputs (and y against the outputs under their losses); returns the sample count and the x feed shapes. */
function checkData(model: tf.LayersModel, compiled: CompiledConfig | null, outputNames: string[], x: DataColumn[], y: DataColumn[] | null, prefix = ''): { n: number; xShapes: number[][] } {
  if (x.length !== model.inputs.length) fail(`${prefix}x`, `the model has ${model.inputs.length} input(s), got ${x.length} x column(s)`, 'DATASET_MISMATCH');
  const xShapes = x.map((col, i) => {
    const want = model.inputs[i]!.shape.slice(1);
    const shape = feedShape(col.shape, want);
    if (!shape) {
      fail(`${prefix}x[${i}]`, `input "${model.inputs[i]!.name}" expects samples of shape [${want.map(String).join(', ')}], got [${col.shape.join(', ')}]`, 'DATASET_MISMATCH');
    }
    return shape;
  });
  const n = sampleCount(x, 'x');
  if (y && compiled) {
    const outs = model.outputs.length;
    if (y.length !== outs || outputNames.length !== outs || compiled.losses.length !== outs) {
      fail(`${prefix}y`, `the model has ${outs} output(s), got ${y.length} y column(s), ${outputNames.length} output name(s) and ${compiled.losses.length} loss(es)`, 'DATASET_MISMATCH');
    }
    y.forEach((col, i) => {
      const message = checkTargetShape({ name: outputNames[i]!, shape: model.outputs[i]!.shape.slice(1) }, compiled.losses[i]!, col.shape);
      if (message) fail(`${prefix}y[${i}]`, message, 'DATASET_MISMATCH');
    });
    const m = sampleCount(y, 'y');
    if (m !== n) fail(`${prefix}y`, `x has ${n} samples but y has ${m}`, 'DATASET_MISMATCH');
  }
  return { n, xShapes };
}


/**
 * Makes batch tensors from columns: contiguous rows straight from the column (views, no copy),
 * shuffled rows gathered into one reused buffer per column.
 */
class Batcher {
  private readonly buffers: Float32Array[];
  private readonly rows: number[];

  private readonly shapes: number[][];

  /** `shapes`: the per-sample shape each column is fed as (default: its own). */
  constructor(private readonly cols: ArrayColumn[], batchSize: number, gathers: boolean, shapes?: number[][]) {
    this.rows = cols.map((c) => prod(c.shape));
    this.shapes = shapes ?? cols.map((c) => c.shape);
    this.buffers = gathers ? this.rows.map((r) => new Float32Array(r * batchSize)) : [];
  }

  /** Rows start..end-1 in order. */
  range(start: number, end: number): tf.Tensor[] {
    return this.cols.map((col, i) => {
      const row = this.rows[i]!;
      // A view of the dataset's own array: tfjs never writes into its inputs, and nothing here mutates columns.
      return tf.tensor(col.data.subarray(start * row, end * row), [end - start, ...this.shapes[i]!], 'float32');
    });
  }

  /** The rows order[start..end-1]. */
  gather(order: Int32Array, start: number, end: number): tf.Tensor[] {
    // The cpu backend keeps the array it is given (no copy), so a reused buffer must be copied there;
    // the other backends copy (or upload) it within the step, before the buffer is reused.
    const copy = tf.getBackend() === 'cpu';
    return this.cols.map((col, i) => {
      const row = this.rows[i]!;
      const buf = this.buffers[i]!;
      for (let k = start; k < end; k++) {
        const src = order[k]! * row;
        buf.set(col.data.subarray(src, src + row), (k - start) * row);
      }
      const view = buf.subarray(0, (end - start) * row);
      return tf.tensor(copy ? view.slice() : view, [end - start, ...this.shapes[i]!], 'float32');
    });
  }
}

/** Turns model.apply's result into a list in output order. */
function asList(out: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
  return Array.isArray(out) ? out : [out];
}

function applyModel(model: tf.LayersModel, xs: tf.Tensor[], training: boolean): tf.Tensor[] {
  return asList(model.apply(xs.length === 1 ? xs[0]! : xs, { training }) as tf.Tensor | tf.Tensor[]);
}

/**
 * The weight regularisation penalties of every layer, nested models included, each layer once.
 * (tfjs's Sequential.calculateLosses() returns none for a top-level Sequential, so walk the layers.)
 */
function regularizationLosses(model: tf.LayersModel): tf.Scalar[] {
  const seen = new Set<tf.layers.Layer>();
  const out: tf.Scalar[] = [];
  const visit = (layer: tf.layers.Layer): void => {
    if (seen.has(layer)) return;
    seen.add(layer);
    const inner = (layer as unknown as { layers?: tf.layers.Layer[] }).layers;
    if (Array.isArray(inner)) inner.forEach(visit);
    else out.push(...layer.calculateLosses());
  };
  model.layers.forEach(visit);
  return out;
}

/**
 * The step's scalar total loss (what is minimised) and the vector of log values in key order:
 * [total, <out>_loss..., metric means...]. `sampleWeights` (one per sample: sample_weight times
 * class weight) scale every output's per-sample losses; metrics are not weighted (Keras's plain metrics).
 */
function stepValues(model: tf.LayersModel, fns: StepFns, preds: tf.Tensor[], ys: tf.Tensor[], sampleWeights: tf.Tensor | null): { total: tf.Scalar; vec: tf.Tensor1D } {
  const { total, outLosses } = stepLosses(model, fns, preds, ys, sampleWeights);
  return { total, vec: logVector(fns, total, outLosses, preds, ys) };
}

/** The step's total loss (what is minimised, regularisation included) and each output's loss. */
function stepLosses(model: tf.LayersModel, fns: StepFns, preds: tf.Tensor[], ys: tf.Tensor[], sampleWeights: tf.Tensor | null): { total: tf.Scalar; outLosses: tf.Scalar[] } {
  const outLosses = preds.map((pred, i) => {
    let perSample = fns.losses[i]!(ys[i]!, pred);
    // Keras's SUM_OVER_BATCH_SIZE with sample weights: sum(loss * w) / number of loss values.
    if (sampleWeights) perSample = perSample.mul(sampleWeights.reshape([-1, ...new Array<number>(Math.max(0, perSample.rank - 1)).fill(1)]));
    return perSample.mean() as tf.Scalar;
  });
  let total = outLosses.map((l, i) => l.mul(fns.weights[i]!)).reduce((a, b) => a.add(b)) as tf.Scalar;
  // Regularisation penalties are part of the loss Keras reports (and of val_loss).
  for (const reg of regularizationLosses(model)) total = total.add(reg);
  return { total, outLosses };
}

/** The log vector in key order: [total, <out>_loss..., metric means..., confusion counts...]. */
function logVector(fns: StepFns, total: tf.Scalar, outLosses: tf.Scalar[], preds: tf.Tensor[], ys: tf.Tensor[]): tf.Tensor1D {
  const metricMeans = fns.metrics.map(([i, fn]) => (fn ? fn(ys[i]!, preds[i]!).mean() as tf.Scalar : tf.scalar(0)));
  const parts = [total, ...(preds.length > 1 ? outLosses : []), ...metricMeans];
  const counts = fns.stateful.map((s) => s.metric.counts(ys[s.output]!, preds[s.output]!));
  return (counts.length ? tf.concat([tf.stack(parts), ...counts]) : tf.stack(parts)) as tf.Tensor1D;
}

function classWeightTable(classWeight: Record<string, number> | undefined, compiled: CompiledConfig, y: DataColumn[]): { table: number[] } | null {
  if (classWeight === undefined || classWeight === null) return null;
  if (typeof classWeight !== 'object' || Array.isArray(classWeight)) fail('class_weight', 'must be an object mapping class index to weight, like {"0": 1, "1": 5}');
  const entries = Object.entries(classWeight);
  if (entries.length === 0) return null;
  if (compiled.losses.length !== 1) fail('class_weight', 'is only supported for models with a single output (as in Keras)');
  if (y[0] && y[0].shape.length > 1) fail('class_weight', `is not supported for targets of shape [${y[0].shape.join(', ')}] (only class labels or one-hot rows)`);
  let max = -1;
  for (const [key, w] of entries) {
    if (!/^(0|[1-9][0-9]*)$/.test(key)) fail(`class_weight.${key}`, `keys must be class indices ("0", "1", ...), got "${key}"`);
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) fail(`class_weight.${key}`, `must be a number >= 0, got ${JSON.stringify(w)}`);
    max = Math.max(max, Number(key));
  }
  if (max > 1_000_000) fail('class_weight', 'class indices above 1000000 are not supported');
  // Classes left out (and labels beyond the table, the last slot) weigh 1.
  const table = new Array<number>(max + 2).fill(1);
  for (const [key, w] of entries) table[Number(key)] = w;
  return { table };
}

/** Per-sample class weights for a batch of targets, as Keras's class_weight map fn picks the class. */
function sampleClassWeights(table: tf.Tensor1D, yTrue: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const last = yTrue.rank === 2 ? yTrue.shape[1]! : 1;
    const cls = last > 1 ? yTrue.argMax(-1) : yTrue.reshape([-1]).cast('int32');
    // Clipped as float32: the wasm backend's ClipByValue reads an int32 tensor as float32 bits
    // (no clip at all), and a label past the table's end then failed the gather.
    return tf.gather(table, cls.cast('float32').clipByValue(0, table.shape[0] - 1).cast('int32'));
  });
}

/**
 * Lets timers and I/O run (cancel and stop signals, lock renewals, events) between batches: at
 * most every YIELD_MS, so that batches of a few microseconds (the dense fast path on a small
 * model) are not spent mostly waiting for the event loop.
 */
const YIELD_MS = 4;
let lastYield = 0;
const yieldToEventLoop = async (): Promise<void> => {
  if (performance.now() - lastYield < YIELD_MS) return;
  await new Promise<void>((resolve) => setImmediate(resolve));
  lastYield = performance.now();
};

/** Batches of x then y tensors read from disk, the next batch read ahead while this one trains. */
class DiskFeed {
  private pending: { start: number; end: number; p: Promise<Float32Array[]> } | null = null;

  constructor(private readonly reader: WindowReader, private readonly shapes: number[][]) {}

  async next(start: number, end: number, after: [number, number] | null): Promise<tf.Tensor[]> {
    let bufs: Float32Array[];
    const pending = this.pending;
    this.pending = null;
    if (pending && pending.start === start && pending.end === end) bufs = await pending.p;
    else {
      if (pending) await pending.p.catch(() => {});
      bufs = await this.reader.batch(start, end);
    }
    if (after) {
      const p = this.reader.batch(after[0], after[1]);
      p.catch(() => {});
      this.pending = { start: after[0], end: after[1], p };
    }
    return bufs.map((b, i) => tf.tensor(b, [end - start, ...this.shapes[i]!], 'float32'));
  }

  async close(): Promise<void> {
    if (this.pending) await this.pending.p.catch(() => {});
    this.pending = null;
    await this.reader.release();
  }
}

function rowBytesOf(cols: DataColumn[]): number {
  return cols.reduce((a, c) => a + 4 * prod(c.shape), 0);
}

function windowBytes(opts: { shuffleWindowBytes?: number }): number {
  return opts.shuffleWindowBytes ?? loadDatasetConfig().shuffleWindowBytes;
}

/**
 * Runs a model over (x, y) in batches with training=false and returns the on-device sum of
 * batch log vectors weighted by batch size (divide by the sample count for means).
 */
async function accumulateEval(model: tf.LayersModel, fns: StepFns, x: DataColumn[], y: DataColumn[], n: number, batchSize: number, xShapes: number[][], files?: FileCache, window = loadDatasetConfig().shuffleWindowBytes, w: DataColumn | null = null): Promise<tf.Tensor1D> {
  // The sample weights (when given) travel as one more y column.
  const yw = w ? [...y, w] : y;
  const disk = [...x, ...yw].some(isStoredColumn);
  const xb = disk ? null : new Batcher(x as ArrayColumn[], batchSize, false, xShapes);
  const yb = disk ? null : new Batcher(yw as ArrayColumn[], batchSize, false);
  const ownFiles = disk && !files ? new FileCache() : null;
  const feed = disk
    ? new DiskFeed(new WindowReader([...x, ...yw], sequentialPlan(sequentialLayout(n, rowBytesOf([...x, ...y]), window)), (files ?? ownFiles)!), [...xShapes, ...yw.map((c) => c.shape)])
    : null;
  let accum: tf.Tensor1D = tf.zeros([fns.width]);
  try {
    for (let start = 0; start < n; start += batchSize) {
      const end = Math.min(n, start + batchSize);
      let xs: tf.Tensor[];
      let ys: tf.Tensor[];
      if (feed) {
        const t = await feed.next(start, end, end < n ? [end, Math.min(n, end + batchSize)] : null);
        xs = t.slice(0, x.length);
        ys = t.slice(x.length);
      } else {
        xs = xb!.range(start, end);
        ys = yb!.range(start, end);
      }
      const sw = w ? ys.pop()! : null;
      try {
        const next = tf.tidy(() => {
          const preds = applyModel(model, xs, false);
          const { vec } = stepValues(model, fns, preds, ys, sw);
          return accum.add(vec.mul(stepScale(fns, end - start))) as tf.Tensor1D;
        });
        accum.dispose();
        accum = next;
      } finally {
        tf.dispose([...xs, ...ys]);
        if (sw) sw.dispose();
      }
      await yieldToEventLoop();
    }
  } catch (err) {
    accum.dispose();
    throw err;
  } finally {
    await feed?.close();
    await ownFiles?.close();
  }
  return accum;
}

/** Epoch (or running) logs from summed step vectors starting at `offset`: means, and confusion metrics from their counts. */
function toLogs(fns: StepFns, values: ArrayLike<number>, offset: number, count: number, prefix = ''): Record<string, number> {
  const logs: Record<string, number> = {};
  fns.keys.forEach((k, i) => {
    logs[prefix + k] = values[offset + i]! / count;
  });
  for (const s of fns.stateful) {
    const start = offset + fns.keys.length + s.offset;
    logs[prefix + fns.keys[s.keyIndex]!] = s.metric.result(Array.prototype.slice.call(values, start, start + s.metric.size));
  }
  return logs;
}

/** Columns viewing rows start..end-1 of each column (no copy). */
function sliceColumns(cols: DataColumn[], start: number, end: number): DataColumn[] {
  return cols.map((c) => {
    if (isStoredColumn(c)) return { ...c, stored: { ...c.stored, first: c.stored.first + start, rows: end - start } };
    const row = prod(c.shape);
    return { shape: c.shape, data: c.data.subarray(start * row, end * row) };
  });
}

/**
 * Trains `model` like Keras 2's model.fit. `x` is in the model's input order, `y` in output order.
 * Creates its optimizer from `compiled.optimizer` and disposes it, and every tensor it made, before returning.
 */
export async function fit(
  model: tf.LayersModel,
  compiled: CompiledConfig,
  outputNames: string[],
  x: DataColumn[],
  y: DataColumn[],
  opts: FitOptions,
  hooks: FitHooks = {},
  validation?: { x: DataColumn[]; y: DataColumn[]; w?: DataColumn | null },
): Promise<FitResult> {
  const { epochs, batchSize } = opts;
  const initialEpoch = opts.initialEpoch ?? 0;
  const split = opts.validationSplit ?? 0;
  if (!Number.isInteger(epochs) || epochs < 0) fail('epochs', `must be an integer >= 0, got ${epochs}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) fail('batch_size', `must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(initialEpoch) || initialEpoch < 0) fail('initial_epoch', `must be an integer >= 0, got ${initialEpoch}`);
  if (typeof split !== 'number' || !(split >= 0 && split < 1)) fail('validation_split', `must be a number in [0, 1), got ${split}`);
  if (opts.stepsPerEpoch !== undefined && (!Number.isInteger(opts.stepsPerEpoch) || opts.stepsPerEpoch < 1)) {
    fail('steps_per_epoch', `must be an integer >= 1, got ${opts.stepsPerEpoch}`);
  }

  const { n, xShapes } = checkData(model, compiled, outputNames, x, y);
  const w = opts.sampleWeight ? checkWeights(opts.sampleWeight, n, 'sample_weight') : null;
  let nTrain = n;
  let val: { x: DataColumn[]; y: DataColumn[]; w: DataColumn | null; n: number; xShapes: number[][] } | null = null;
  if (validation) {
    // validation data takes precedence over validation_split, as in Keras.
    const checked = checkData(model, compiled, outputNames, validation.x, validation.y, 'validation.');
    const vw = validation.w ? checkWeights(validation.w, checked.n, 'validation.sample_weight') : null;
    val = checked.n > 0 ? { x: validation.x, y: validation.y, w: vw, n: checked.n, xShapes: checked.xShapes } : null;
  } else if (split > 0) {
    // Keras: the last fraction of the samples, before shuffling, is the validation set (sample weights too).
    nTrain = Math.floor(n * (1 - split));
    if (nTrain === 0 || nTrain === n) {
      fail('validation_split', `${n} samples cannot be split into training and validation sets with validation_split=${split}`);
    }
    val = { x: sliceColumns(x, nTrain, n), y: sliceColumns(y, nTrain, n), w: w ? sliceColumns([w], nTrain, n)[0]! : null, n: n - nTrain, xShapes };
  }
  if (nTrain === 0) fail('dataset_id', 'the dataset has no samples to train on', 'DATASET_INVALID');
  const cw = classWeightTable(opts.classWeight, compiled, y);

  const fns = buildStepFns(compiled, outputNames);
  const shuffle = opts.shuffle ?? true;
  const window = windowBytes(opts);
  // The order depends on x and y only: a sample-weight column (read along as one more y column) does not change it.
  const orderCols = [...x, ...y];
  const yw = w ? [...y, w] : y;
  const trainCols = [...x, ...yw];
  const disk = trainCols.some(isStoredColumn);
  const layout: ShuffleLayout = shuffleLayout(nTrain, rowBytesOf(orderCols), window);
  const identity = new Int32Array(disk ? 0 : nTrain);
  for (let i = 0; i < identity.length; i++) identity[i] = i;
  const xb = disk ? null : new Batcher(x as ArrayColumn[], batchSize, true, xShapes);
  const yb = disk ? null : new Batcher(yw as ArrayColumn[], batchSize, true);
  const files = new FileCache();
  const feedShapes = [...xShapes, ...yw.map((c) => c.shape)];
  // Keras's Normalization(adapt): layers marked adapt and not adapted yet take the dataset's statistics.
  await adaptNormalizationLayers(model, x, n);
  const varList = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const history: Record<string, number[]> = {};
  const optimizer = makeOptimizer(compiled.optimizer);
  if (opts.resume?.optimizerWeights?.length) await setOptimizerState(optimizer, opts.resume.optimizerWeights);
  const resume = opts.resume;
  const cwTable = cw ? tf.tensor1d(cw.table, 'float32') : null;
  const dense = denseTrainer(opts, model, compiled, fns, optimizer, varList, x, y, disk, { sample: w as ArrayColumn | null, classTable: cw?.table ?? null });
  const fast = dense.trainer;
  let stopped = false;
  let epochsRun = 0;
  let accum: tf.Tensor1D | null = null;
  let outOfData: FitResult['outOfData'];

  // Batches form one stream over `epochs` passes through the data; epoch e runs stream batches
  // [e*S, (e+1)*S). Without steps_per_epoch S is the batches of one pass (epoch e = pass e).
  const perPass = Math.ceil(nTrain / batchSize);
  const S = opts.stepsPerEpoch ?? perPass;
  const streamEnd = epochs * perPass;
  // The pass being read: its order and (from disk) its reader.
  let pass: { index: number; order: Int32Array; feed: DiskFeed | null } | null = null;
  const openPass = async (index: number) => {
    if (pass?.index === index) return pass;
    await pass?.feed?.close();
    pass = null;
    // The order of a pass depends only on (seed, pass) and the dataset's size.
    const plan: EpochPlan = !shuffle ? sequentialPlan(disk ? sequentialLayout(nTrain, rowBytesOf(orderCols), window) : layout)
      : opts.seed !== undefined ? seededEpochPlan(layout, opts.seed, index) : epochPlan(layout, Math.random);
    pass = { index, order: plan.order ?? identity, feed: disk ? new DiskFeed(new WindowReader(trainCols, plan, files), feedShapes) : null };
    return pass;
  };

  // One step through tfjs: the loss on the gradient tape, optimizer.minimize, the log vector added to accum.
  const tfjsStep = async (p: { order: Int32Array; feed: DiskFeed | null }, start: number, end: number): Promise<void> => {
    let xs: tf.Tensor[];
    let ys: tf.Tensor[];
    if (p.feed) {
      const t = await p.feed.next(start, end, end < nTrain ? [end, Math.min(nTrain, end + batchSize)] : null);
      xs = t.slice(0, x.length);
      ys = t.slice(x.length);
    } else {
      xs = xb!.gather(p.order, start, end);
      ys = yb!.gather(p.order, start, end);
    }
    const wBatch = w ? ys.pop()! : null;
    let sw: tf.Tensor | null = null;
    let vec: tf.Tensor1D | null = null;
    try {
      // Keras: the class weight multiplies into the sample weight.
      const cwBatch = cwTable ? sampleClassWeights(cwTable, ys[0]!) : null;
      sw = cwBatch && wBatch ? tf.tidy(() => cwBatch.mul(wBatch.reshape([-1]))) : cwBatch ?? wBatch;
      if (cwBatch && cwBatch !== sw) cwBatch.dispose();
      // Only the loss is computed on the gradient tape; the metrics and the log vector come after,
      // from the kept predictions (no tape records, no saved tensors for them).
      let kept: tf.Tensor[] = [];
      let outLosses: tf.Scalar[] = [];
      let preds: tf.Tensor[] = [];
      const lossOnly = (training: boolean) => {
        preds = applyModel(model, xs, training).map((p) => tf.keep(p));
        const out = stepLosses(model, fns, preds, ys, sw);
        outLosses = out.outLosses.map((l) => tf.keep(l));
        kept = [...preds, ...outLosses];
        return out.total;
      };
      // Nothing to train (every layer frozen): still run the model in training mode for the logs.
      const total = varList.length > 0
        ? optimizer.minimize(() => lossOnly(true), true, varList)!
        : tf.tidy(() => lossOnly(true));
      try {
        vec = tf.tidy(() => logVector(fns, total, outLosses, preds, ys));
      } finally {
        tf.dispose([total, ...kept]);
      }
      const prev: tf.Tensor1D = accum!;
      const bs = end - start;
      accum = tf.tidy(() => prev.add(vec!.mul(stepScale(fns, bs))) as tf.Tensor1D);
      prev.dispose();
    } finally {
      tf.dispose([...xs, ...ys]);
      if (wBatch) wBatch.dispose();
      if (sw && !sw.isDisposed) sw.dispose();
      if (vec) (vec as tf.Tensor).dispose();
    }
  };

  try {
    for (let epoch = resume?.epoch ?? initialEpoch; epoch < epochs; epoch++) {
      // A resumed epoch continues after its last checkpointed batch, with that batch's sums.
      const resumeHere = resume && epoch === resume.epoch && resume.batch > 0;
      const startSums = resumeHere && resume.sums ? resume.sums : null;
      if (fast) fast.resetSums(startSums);
      else accum = startSums ? tf.tensor1d(startSums) : tf.zeros([fns.width]);
      let seen = resumeHere ? resume.seen : 0;
      let batch = resumeHere ? resume.batch : 0;
      for (; batch < S; batch++) {
        const g = epoch * S + batch;
        if (g >= streamEnd) {
          outOfData = { epoch, batch, batchesPerPass: perPass, stepsPerEpoch: S };
          break;
        }
        const p = await openPass(Math.floor(g / perPass));
        const k = g % perPass;
        const start = k * batchSize;
        const end = Math.min(nTrain, start + batchSize);
        if (fast) fast.step(p.order, start, end);
        else await tfjsStep(p, start, end);
        seen += end - start;

        if (hooks.onBatchEnd) {
          const current = accum;
          const count = seen;
          const logs = async () => {
            if (fast) return toLogs(fns, fast.sums, 0, count);
            if (!current || current.isDisposed) throw new Error('batch logs must be read before the onBatchEnd hook returns');
            return toLogs(fns, await current.data(), 0, count);
          };
          await hooks.onBatchEnd(epoch, batch, logs);
        }
        if (hooks.onCheckpoint && hooks.checkpointDue?.()) {
          fast?.release();
          const sums = fast ? Array.from(fast.sums) : Array.from(await accum!.data());
          await hooks.onCheckpoint({ epoch, batch: batch + 1, sums, seen, optimizer });
        }
        await yieldToEventLoop();
        if (hooks.shouldStop?.()) {
          stopped = true;
          break;
        }
      }
      // Validation, callbacks and checkpoints see the fast path's weights from here on.
      fast?.release();
      if (stopped) break;
      // The pass is done with: let its reader go before validation reads.
      if (pass && Math.floor(((epoch + 1) * S) / perPass) !== (pass as { index: number }).index) {
        await (pass as { feed: DiskFeed | null }).feed?.close();
        pass = null;
      }
      // Out of data before this epoch ran a batch: nothing to log (Keras stops there too).
      if (seen === 0) break;

      // Epoch end: validation on device, then one readback of train and val sums together.
      let logs: Record<string, number>;
      if (val) {
        const valAccum = await accumulateEval(model, fns, val.x, val.y, val.n, batchSize, val.xShapes, files, window, val.w);
        const both = fast ? valAccum : tf.concat([accum!, valAccum]);
        if (!fast) valAccum.dispose();
        let values: ArrayLike<number>;
        try {
          values = await both.data();
        } finally {
          both.dispose();
        }
        logs = fast
          ? { ...toLogs(fns, fast.sums, 0, seen), ...toLogs(fns, values, 0, val.n, 'val_') }
          : { ...toLogs(fns, values, 0, seen), ...toLogs(fns, values, fns.width, val.n, 'val_') };
      } else {
        logs = toLogs(fns, fast ? fast.sums : await accum!.data(), 0, seen);
      }
      accum?.dispose();
      accum = null;
      for (const [k, v] of Object.entries(logs)) (history[k] ??= []).push(v);
      epochsRun++;
      if (hooks.onEpochEnd) await hooks.onEpochEnd(epoch, logs, { optimizer });
      if (outOfData) break;
      if (hooks.shouldStop?.()) {
        stopped = true;
        break;
      }
    }
  } finally {
    fast?.release();
    if (accum) accum.dispose();
    if (cwTable) cwTable.dispose();
    optimizer.dispose();
    await (pass as { feed: DiskFeed | null } | null)?.feed?.close();
    await files.close();
  }
  return { history, stopped, epochsRun, ...(outOfData ? { outOfData } : {}), engine: dense.engine };
}

/**
 * The dense fast path's trainer for this fit, when it applies: asked for (the default), the
 * engine's wasm kernels in, data in memory, and a model and compile the plan accepts.
 * Otherwise null, with the reason.
 */
function denseTrainer(opts: FitOptions, model: tf.LayersModel, compiled: CompiledConfig, fns: StepFns, optimizer: tf.Optimizer,
  varList: tf.Variable[], x: DataColumn[], y: DataColumn[], disk: boolean,
  weights: { sample: ArrayColumn | null; classTable: number[] | null }): { trainer: DenseTrainer | null; engine: FitResult['engine'] } {
  const tfjs = (reason: string) => ({ trainer: null, engine: { path: 'tfjs' as const, reason } });
  if (opts.denseFastPath === false) return tfjs('not asked for');
  if (tf.getBackend() !== 'wasm' || !wasmTrainingKernelsRegistered()) return tfjs(`backend ${tf.getBackend()}${tf.getBackend() === 'wasm' ? ' with stock kernels' : ''}`);
  if (!denseKernelsSupported()) return tfjs('WebAssembly without SIMD');
  if (disk) return tfjs('data on disk');
  if (x.length !== 1 || y.length !== 1 || fns.stateful.length > 0) return tfjs('several inputs or outputs, or a confusion-matrix metric');
  const plan = planDenseTraining(model, compiled, { features: prod(x[0]!.shape), targets: prod(y[0]!.shape) });
  if ('reason' in plan) return tfjs(plan.reason);
  try {
    const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 32);
    const trainer = new DenseTrainer(plan, optimizer, varList, opts.batchSize, fns.width, x[0] as ArrayColumn, y[0] as ArrayColumn, weights, seed);
    return { trainer, engine: { path: 'dense' } };
  } catch (err) {
    // Its buffers live in one wasm32 memory (4 GiB at most): a model too big for it trains through tfjs.
    return tfjs(`the dense kernels' memory: ${(err as Error).message}`);
  }
}

/** Checks a sample-weight column: one value per sample (shape [] or [1]), finite and >= 0 when in memory. */
function checkWeights(w: DataColumn, n: number, path: string): DataColumn {
  if (prod(w.shape) !== 1) fail(path, `must hold one weight per sample (shape [] or [1]), got samples of shape [${w.shape.join(', ')}]`, 'DATASET_INVALID');
  const rows = columnRows(w);
  if (rows !== n) fail(path, `has ${rows} weights but the data has ${n} samples`, 'DATASET_MISMATCH');
  if (!isStoredColumn(w)) {
    for (let i = 0; i < w.data.length; i++) {
      const v = w.data[i]!;
      if (!(v >= 0 && Number.isFinite(v))) fail(path, `sample ${i} has weight ${v}; sample weights must be finite numbers >= 0`, 'DATASET_INVALID');
    }
  }
  return w;
}

/**
 * Keras's model.evaluate: batched, training=false; returns {loss, <metric keys>} (several
 * outputs: loss, <out>_loss, <out>_<metric>), means over the whole set; `sampleWeight`
 * (Keras's sample_weight) weights the losses, not the metrics.
 */
export async function evaluate(
  model: tf.LayersModel,
  compiled: CompiledConfig,
  outputNames: string[],
  x: DataColumn[],
  y: DataColumn[],
  batchSize: number,
  sampleWeight?: DataColumn | null,
): Promise<Record<string, number>> {
  if (!Number.isInteger(batchSize) || batchSize < 1) fail('batch_size', `must be a positive integer, got ${batchSize}`);
  const { n, xShapes } = checkData(model, compiled, outputNames, x, y);
  if (n === 0) fail('dataset_id', 'the dataset has no samples to evaluate on', 'DATASET_INVALID');
  const w = sampleWeight ? checkWeights(sampleWeight, n, 'sample_weight') : null;
  const fns = buildStepFns(compiled, outputNames);
  const accum = await accumulateEval(model, fns, x, y, n, batchSize, xShapes, undefined, undefined, w);
  try {
    return toLogs(fns, await accum.data(), 0, n);
  } finally {
    accum.dispose();
  }
}

/**
 * Keras's model.predict: batched, training=false. Returns, per output in model order, nested
 * arrays shaped [samples, ...outputShape].
 */
export async function predict(model: tf.LayersModel, x: ArrayColumn[], batchSize: number): Promise<number[][][]> {
  if (!Number.isInteger(batchSize) || batchSize < 1) fail('batch_size', `must be a positive integer, got ${batchSize}`);
  const { n, xShapes } = checkData(model, null, [], x, null);
  const results: unknown[][] = model.outputs.map(() => []);
  const xb = new Batcher(x, batchSize, false, xShapes);
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const xs = xb.range(start, end);
    let preds: tf.Tensor[] = [];
    try {
      preds = tf.tidy(() => applyModel(model, xs, false));
      for (let i = 0; i < preds.length; i++) {
        const rows = (await preds[i]!.array()) as unknown[];
        for (const row of rows) results[i]!.push(row);
      }
    } finally {
      tf.dispose([...xs, ...preds]);
    }
    await yieldToEventLoop();
  }
  return results as number[][][];
}
