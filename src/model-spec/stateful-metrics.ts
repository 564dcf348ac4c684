/**
 * Keras's confusion-matrix metrics (Precision, Recall, AUC): their value comes from counts
 * summed over the whole epoch, not from averaging per-batch values. Each batch gives a
 * vector of counts; the training loop sums the vectors; `result` turns the sums into the
 * metric as keras.metrics does.
 */
import * as tf from '@tensorflow/tfjs';
import { alignTrue } from './align-targets.ts';
import type { MetricConfig } from './types.ts';

/** Keras's backend.epsilon(), as AUC's threshold padding uses it. */
const EPSILON = 1e-7;

export const STATEFUL_METRICS = ['precision', 'recall', 'auc'] as const;
export type StatefulName = (typeof STATEFUL_METRICS)[number];

export interface StatefulMetric {
  /** Length of the count vector a batch gives. */
  size: number;
  /** Counts for one batch (sums, not means), shape [size]. */
  counts: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor1D;
  /** The metric from counts summed over the epoch. */
  result: (sums: ArrayLike<number>) => number;
}

const divNoNan = (a: number, b: number) => (b === 0 ? 0 : a / b);

/** Keras's AUC thresholds: evenly spaced in (0, 1), plus -eps and 1 + eps at the ends. */
function aucThresholds(n: number): number[] {
  const inner = Array.from({ length: n - 2 }, (_, i) => (i + 1) / (n - 1));
  return [0 - EPSILON, ...inner, 1 + EPSILON];
}

/** Predictions and labels as [N] vectors for the binary confusion counts (class_id / top_k as Keras). */
function flatten(yTrue: tf.Tensor, yPred: tf.Tensor, classId: number | null, topK: number | null): [tf.Tensor, tf.Tensor] {
  let p = yPred.cast('float32');
  let t = yTrue.cast('float32');
  t = alignTrue(t, p);
  if (topK !== null && p.rank >= 1) {
    // Keras: scores outside the top k of each row are set to -inf before thresholding.
    const k = Math.min(topK, p.shape[p.rank - 1]!);
    const kth = tf.topk(p, k).values.min(-1, true);
    p = tf.where(p.greaterEqual(kth), p, tf.fill(p.shape, -Infinity));
  }
  if (classId !== null) {
    p = p.gather([classId], p.rank - 1);
    t = t.gather([classId], t.rank - 1);
  }
  return [t.reshape([-1]), p.reshape([-1])];
}

/** tp, fp, tn, fn at each threshold, as one vector [4 * thresholds]. */
function confusion(t: tf.Tensor, p: tf.Tensor, thresholds: number[]): tf.Tensor1D {
  const th = tf.tensor1d(thresholds).reshape([-1, 1]);
  const predPos = p.reshape([1, -1]).greater(th).cast('float32'); // [T, N]
  const isPos = t.reshape([1, -1]).cast('float32');
  const isNeg = tf.scalar(1).sub(isPos);
  const tp = predPos.mul(isPos).sum(1);
  const fp = predPos.mul(isNeg).sum(1);
  const tn = tf.scalar(1).sub(predPos).mul(isNeg).sum(1);
  const fn = tf.scalar(1).sub(predPos).mul(isPos).sum(1);
  return tf.concat([tp, fp, tn, fn]) as tf.Tensor1D;
}

function precisionRecall(kind: 'precision' | 'recall', params: Record<string, unknown>): StatefulMetric {
  const thresholds = (params.thresholds as number[] | null) ?? [0.5];
  const classId = (params.class_id as number | null) ?? null;
  const topK = (params.top_k as number | null) ?? null;
  // With top_k and no thresholds, Keras counts everything in the top k (threshold -inf).
  const ths = topK !== null && params.thresholds == null ? [-Infinity] : thresholds;
  const T = ths.length;
  return {
    size: 4 * T,
    counts: (yTrue, yPred) => tf.tidy(() => {
      const [t, p] = flatten(yTrue, yPred, classId, topK);
      return confusion(t, p, ths.map((x) => (x === -Infinity ? -3.4e38 : x)));
    }),
    // Keras reports the first threshold's value when given several (a list result is not a scalar log).
    result: (s) => (kind === 'precision' ? divNoNan(s[0]!, s[0]! + s[T]!) : divNoNan(s[0]!, s[0]! + s[3 * T]!)),
  };
}

function auc(params: Record<string, unknown>): StatefulMetric {
  const T = Number(params.num_thresholds ?? 200);
  const ths = aucThresholds(T);
  const curve = String(params.curve ?? 'ROC').toUpperCase();
  const summation = String(params.summation_method ?? 'interpolation');
  const fromLogits = Boolean(params.from_logits);
  return {
    size: 4 * T,
    counts: (yTrue, yPred) => tf.tidy(() => {
      const [t, p] = flatten(yTrue, fromLogits ? yPred.sigmoid() : yPred, null, null);
      return confusion(t, p, ths);
    }),
    result: (s) => {
      const tp = Array.from({ length: T }, (_, i) => s[i]!);
      const fp = Array.from({ length: T }, (_, i) => s[T + i]!);
      const tn = Array.from({ length: T }, (_, i) => s[2 * T + i]!);
      const fn = Array.from({ length: T }, (_, i) => s[3 * T + i]!);
      if (curve === 'PR' && summation === 'interpolation') {
        // keras.metrics.AUC.interpolate_pr_auc (Davis & Goadrich, 2006).
        let total = 0;
        for (let i = 0; i < T - 1; i++) {
          const dtp = tp[i]! - tp[i + 1]!;
          const p0 = tp[i]! + fp[i]!;
          const p1 = tp[i + 1]! + fp[i + 1]!;
          const dp = p0 - p1;
          const slope = divNoNan(dtp, Math.max(dp, 0));
          const intercept = tp[i + 1]! - slope * p1;
          const ratio = p0 > 0 && p1 > 0 ? divNoNan(p0, Math.max(p1, 0)) : 1;
          total += divNoNan(slope * (dtp + intercept * Math.log(ratio)), Math.max(tp[i + 1]! + fn[i + 1]!, 0));
        }
        return total;
      }
      const recall = tp.map((v, i) => divNoNan(v, v + fn[i]!));
      let x: number[];
      let y: number[];
      if (curve === 'PR') {
        x = recall;
        y = tp.map((v, i) => divNoNan(v, v + fp[i]!));
      } else {
        x = fp.map((v, i) => divNoNan(v, v + tn[i]!));
        y = recall;
      }
      let total = 0;
      for (let i = 0; i < T - 1; i++) {
        const h = summation === 'minoring' ? Math.min(y[i]!, y[i + 1]!) : summation === 'majoring' ? Math.max(y[i]!, y[i + 1]!) : (y[i]! + y[i + 1]!) / 2;
        total += (x[i]! - x[i + 1]!) * h;
      }
      return total;
    },
  };
}

/** The stateful metric for a resolved MetricConfig (fn "precision", "recall" or "auc"). */
export function statefulMetric(cfg: MetricConfig): StatefulMetric {
  if (cfg.fn === 'auc') return auc(cfg.params);
  if (cfg.fn === 'precision' || cfg.fn === 'recall') return precisionRecall(cfg.fn, cfg.params);
  throw new Error(`metric "${cfg.fn}" is not a confusion-matrix metric`);
}

export function isStateful(cfg: MetricConfig): boolean {
  return (STATEFUL_METRICS as readonly string[]).includes(cfg.fn);
}
