/**
 * Keras 2 metric functions (keras/metrics.py) written with tfjs ops, each returning
 * per-sample values [batch] that the training loop averages like Keras's Mean metrics.
 */
import * as tf from '@tensorflow/tfjs';
import { canonicalLossName, lossFunction, nameKey, sparseLabels, LOSS_SPECS, type ParamSpec } from './losses.ts';
import { expressionLossFunction } from '../expressions/expression-loss.ts';
import { alignTrue } from './align-targets.ts';
import type { MetricConfig } from './types.ts';

const K: ParamSpec = { default: 5, kind: 'number', min: 1, describe: 'a positive integer' };

/**
 * Canonical metric names (MetricConfig.fn), aliases and parameters. "accuracy"/"acc" and
 * "crossentropy"/"ce" are resolved per output by compile, as Keras does. Every loss is a metric too.
 */
export const METRIC_SPECS: Record<string, { aliases: string[]; params: Record<string, ParamSpec> }> = {
  accuracy: { aliases: ['acc'], params: {} },
  crossentropy: { aliases: ['ce'], params: {} },
  binary_accuracy: { aliases: ['binaryAccuracy'], params: { threshold: { default: 0.5, kind: 'number', describe: 'a number' } } },
  categorical_accuracy: { aliases: ['categoricalAccuracy'], params: {} },
  sparse_categorical_accuracy: { aliases: ['sparseCategoricalAccuracy'], params: {} },
  top_k_categorical_accuracy: { aliases: ['topKCategoricalAccuracy'], params: { k: K } },
  sparse_top_k_categorical_accuracy: { aliases: ['sparseTopKCategoricalAccuracy'], params: { k: K } },
  ...Object.fromEntries(Object.entries(LOSS_SPECS).map(([name, spec]) => [name, spec])),
};

/** Metrics Keras has that this service does not compute yet (stateful, thresholded). */
export const UNSUPPORTED_METRICS = [
  'precision_at_recall', 'recall_at_precision', 'sensitivity_at_specificity',
  'specificity_at_sensitivity', 'true_positives', 'true_negatives', 'false_positives', 'false_negatives',
  'mean_iou', 'f1_score', 'fbeta_score', 'r2_score',
];

const METRIC_BY_KEY = new Map<string, string>();
for (const [name, spec] of Object.entries(METRIC_SPECS)) {
  METRIC_BY_KEY.set(nameKey(name), name);
  for (const alias of spec.aliases) METRIC_BY_KEY.set(nameKey(alias), name);
}

/** The canonical metric name for a Keras name, alias or camelCase spelling; undefined when unknown. */
export function canonicalMetricName(name: string): string | undefined {
  return METRIC_BY_KEY.get(nameKey(name));
}

/** True when `name` is a Keras metric this service refuses for now (precision, recall, AUC, ...). */
export function isUnsupportedMetric(name: string): boolean {
  return UNSUPPORTED_METRICS.some((m) => nameKey(m) === nameKey(name));
}

/** Position of the true class among the predictions: in the top k when fewer than k scores beat it (tf.math.in_top_k ties). */
function inTopK(yPred: tf.Tensor, labels: tf.Tensor, k: number): tf.Tensor {
  const classes = yPred.shape[yPred.rank - 1]!;
  const trueScore = tf.oneHot(labels, classes).mul(yPred).sum(-1, true);
  return yPred.greater(trueScore).cast('float32').sum(-1).less(k).cast('float32');
}

const KERAS_METRICS: Record<string, (yTrue: tf.Tensor, yPred: tf.Tensor, p: Record<string, unknown>) => tf.Tensor> = {
  binary_accuracy: (t, p, params) => {
    const threshold = Number(params.threshold ?? 0.5);
    t = alignTrue(t, p);
    return t.equal(p.greater(threshold).cast('float32')).cast('float32').mean(-1);
  },
  categorical_accuracy: (t, p) => t.argMax(-1).equal(p.argMax(-1)).cast('float32'),
  sparse_categorical_accuracy: (t, p) =>
    // Keras compares the float labels with the argmax cast to their dtype.
    t.reshape(p.shape.slice(0, -1)).equal(p.argMax(-1).cast('float32')).cast('float32'),
  top_k_categorical_accuracy: (t, p, params) => inTopK(p, t.argMax(-1), Number(params.k ?? 5)),
  sparse_top_k_categorical_accuracy: (t, p, params) => inTopK(p, sparseLabels(t, p), Number(params.k ?? 5)),
  // keras.metrics.cosine_similarity is the positive similarity (the loss is its negative).
  cosine_similarity: (t, p) => {
    t = alignTrue(t, p);
    const norm = (x: tf.Tensor) => x.mul(x.square().sum(-1, true).maximum(1e-12).rsqrt());
    return norm(t).mul(norm(p)).sum(-1);
  },
};

/** The metric `cfg.fn` (already resolved by compile) as (yTrue, yPred) -> per-sample values [batch]. */
export function metricFunction(cfg: MetricConfig): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor {
  if (cfg.expression !== undefined) return expressionLossFunction(cfg.expression, `metric "${cfg.key}"`);
  const name = canonicalMetricName(cfg.fn);
  if (name === 'accuracy' || name === 'crossentropy') {
    throw new Error(`metric "${cfg.fn}" must be resolved against its output's loss first (resolveCompile does it)`);
  }
  const params = cfg.params ?? {};
  const impl = name === undefined ? undefined : KERAS_METRICS[name];
  if (impl) {
    return (yTrue, yPred) =>
      tf.tidy(() => {
        const v = impl(yTrue.cast('float32'), yPred.cast('float32'), params);
        return v.rank > 1 ? v.mean(Array.from({ length: v.rank - 1 }, (_, i) => i + 1)) : v;
      });
  }
  const loss = name === undefined ? undefined : canonicalLossName(name);
  if (!loss) throw new Error(`unknown metric "${cfg.fn}"`);
  return lossFunction({ name: loss, params });
}
