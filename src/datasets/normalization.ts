/**
 * Keras's `layer.adapt(x)` for Normalization layers, done at fit time from the training
 * dataset's stored statistics: a Normalization layer (src/model-spec/keras-layers.ts) marked
 * `adapt: true` whose statistics are not set yet (its count weight is 0) gets the per-feature
 * mean and variance of the x column feeding it. They are its non-trainable weights (mean,
 * variance, count), so they are saved with the model, and later fits keep them.
 *
 * Works on any layer of class name Normalization with weights [mean, variance, count] and
 * an `axis` config (kept axes; [] or null: one mean and variance for everything).
 */
import type * as tf from '@tensorflow/tfjs';
import { tensor, scalar } from '@tensorflow/tfjs';
import { SpecError } from '../errors.ts';
import type { ArrayColumn } from '../model-spec/types.ts';
import type { ColumnInfo } from './dataset-record.ts';
import { StatsAccumulator } from './stats.ts';

type SymbolicTensor = tf.SymbolicTensor;

interface Found {
  layer: tf.layers.Layer;
  /** The x column index feeding it directly, if any. */
  column: number | null;
  /** Rank of its input, batch included. */
  rank: number;
}

/** Whether the layer asks to be adapted (`adapt: true` in its spec). */
function wantsAdapt(layer: tf.layers.Layer): boolean {
  const own = (layer as unknown as { adapt?: unknown }).adapt;
  if (own !== undefined) return Boolean(own);
  return Boolean((layer.getConfig() as { adapt?: unknown }).adapt);
}

/** Normalization layers of the model (nested models too), with the x column each takes directly. */
function findNormalizations(model: tf.LayersModel): Found[] {
  const out: Found[] = [];
  const visit = (container: tf.LayersModel, feeds: Map<SymbolicTensor, number>) => {
    for (const layer of container.layers) {
      const inbound = (layer as unknown as { inboundNodes?: Array<{ inputTensors: SymbolicTensor[] }> }).inboundNodes ?? [];
      const inputs = inbound[0]?.inputTensors ?? [];
      if (layer.getClassName() === 'Normalization') {
        const col = inputs.length === 1 ? feeds.get(inputs[0]!) : undefined;
        out.push({ layer, column: col ?? null, rank: inputs[0]?.shape.length ?? 0 });
        continue;
      }
      const nested = layer as unknown as tf.LayersModel;
      if (Array.isArray((nested as { layers?: unknown }).layers) && Array.isArray(nested.inputs)) {
        const inner = new Map<SymbolicTensor, number>();
        nested.inputs.forEach((t, j) => {
          const outer = inputs[j] ? feeds.get(inputs[j]!) : undefined;
          if (outer !== undefined) inner.set(t, outer);
        });
        visit(nested, inner);
      }
    }
  };
  visit(model, new Map(model.inputs.map((t, i) => [t, i])));
  return out;
}

export type AdaptColumn = { shape: number[]; info?: ColumnInfo } & Partial<Pick<ArrayColumn, 'data'>>;

interface Moments {
  mean: number[];
  variance: number[];
  overall: { mean: number; variance: number };
}

/** Per-feature (last axis) mean and variance of a column: its stored statistics, or computed from its data. */
function columnMoments(col: AdaptColumn): Moments | null {
  const info = col.info;
  if (info?.features && info.mean !== undefined && info.std !== undefined) {
    return { mean: info.features.mean, variance: info.features.std.map((s) => s * s), overall: { mean: info.mean, variance: info.std * info.std } };
  }
  if (col.data) {
    const acc = new StatsAccumulator(col.shape, false);
    acc.update(col.data);
    const s = acc.result();
    if (!s.features) return null;
    return { mean: s.features.mean, variance: s.features.std.map((v) => v * v), overall: { mean: s.mean, variance: s.std * s.std } };
  }
  return null;
}

/** The layer's kept axes as positive indices. */
function keptAxes(layer: tf.layers.Layer, rank: number): number[] {
  const axis = (layer.getConfig() as { axis?: number | number[] | null }).axis;
  const list = axis === undefined ? [-1] : axis === null ? [] : Array.isArray(axis) ? axis : [axis];
  return list.map((a) => (a < 0 ? rank + a : a));
}

/**
 * Adapts every Normalization layer marked `adapt` whose count weight is still 0, from the x
 * column feeding it: per-feature statistics for axis -1 (the last), overall ones for axis
 * null. `samples` is recorded as the count. Throws FIT_OPTIONS_INVALID when the dataset
 * alone cannot give the statistics.
 */
export async function adaptNormalizationLayers(model: tf.LayersModel, x: AdaptColumn[], samples: number): Promise<void> {
  for (const { layer, column, rank } of findNormalizations(model)) {
    const weights = layer.weights;
    if (!wantsAdapt(layer) || weights.length < 3) continue; // fixed mean and variance: nothing to adapt
    const count = weights.find((w) => /(^|\/)count(_\d+)?$/.test(w.originalName ?? w.name)) ?? weights[2]!;
    if (((await count.read().data())[0] ?? 0) > 0) continue; // adapted already (a saved version, a checkpoint)
    const path = `spec (layer ${layer.name})`;
    if (column === null) {
      throw new SpecError(path, `Normalization layer "${layer.name}" has adapt: true but does not take a model input directly; put it right after the input it normalises`, 'FIT_OPTIONS_INVALID');
    }
    const m = columnMoments(x[column]!);
    if (!m) {
      throw new SpecError(path, `the dataset has no per-feature statistics for input ${column} (over 4096 features, or an old dataset read from disk); Normalization "${layer.name}" cannot adapt to it`, 'FIT_OPTIONS_INVALID');
    }
    const keep = keptAxes(layer, rank);
    const shape = weights[0]!.shape as number[];
    let mean: number[];
    let variance: number[];
    if (keep.length === 0) {
      mean = [m.overall.mean];
      variance = [m.overall.variance];
    } else if (keep.length === 1 && keep[0] === rank - 1) {
      mean = m.mean;
      variance = m.variance;
    } else {
      throw new SpecError(path, `Normalization "${layer.name}" adapts from stored statistics only with axis -1 (the last) or axis null`, 'FIT_OPTIONS_INVALID');
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== mean.length) {
      throw new SpecError(path, `Normalization "${layer.name}" keeps ${size} features but the dataset's input has ${mean.length} along its last axis`, 'FIT_OPTIONS_INVALID');
    }
    const values = [tensor(mean, shape), tensor(variance, shape), scalar(samples)];
    layer.setWeights(values);
    values.forEach((t) => t.dispose());
  }
}
