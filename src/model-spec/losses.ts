/**
 * Keras 2 losses (keras/losses.py and keras/backend.py) written with tfjs ops.
 * Every function returns per-sample values, shape [batch]: Keras reduces over the
 * last axis, and where an output has more axes (sequences), the remaining ones are
 * averaged too, which gives the same batch mean as Keras's SUM_OVER_BATCH_SIZE.
 */
import * as tf from '@tensorflow/tfjs';
import { expressionLossFunction } from '../expressions/expression-loss.ts';
import { alignTrue } from './align-targets.ts';
import type { LossConfig } from './types.ts';

/** Keras's backend.epsilon(). */
export const EPSILON = 1e-7;

/** One accepted parameter of a loss: its default and how to check a value. */
export interface ParamSpec {
  default: number | boolean;
  kind: 'boolean' | 'number';
  /** Inclusive lower bound (numbers). */
  min?: number;
  /** Inclusive upper bound (numbers). */
  max?: number;
  /** Strict lower bound (numbers). */
  gt?: number;
  describe: string;
}

const FROM_LOGITS: ParamSpec = { default: false, kind: 'boolean', describe: 'a boolean' };
const LABEL_SMOOTHING: ParamSpec = { default: 0, kind: 'number', min: 0, max: 1, describe: 'a number in [0, 1]' };

/** Canonical Keras loss names, their aliases and parameters. */
export const LOSS_SPECS: Record<string, { aliases: string[]; params: Record<string, ParamSpec> }> = {
  mean_squared_error: { aliases: ['mse', 'meanSquaredError'], params: {} },
  mean_absolute_error: { aliases: ['mae', 'meanAbsoluteError'], params: {} },
  mean_absolute_percentage_error: { aliases: ['mape', 'meanAbsolutePercentageError'], params: {} },
  mean_squared_logarithmic_error: { aliases: ['msle', 'meanSquaredLogarithmicError'], params: {} },
  binary_crossentropy: { aliases: ['binaryCrossentropy'], params: { from_logits: FROM_LOGITS, label_smoothing: LABEL_SMOOTHING } },
  categorical_crossentropy: { aliases: ['categoricalCrossentropy'], params: { from_logits: FROM_LOGITS, label_smoothing: LABEL_SMOOTHING } },
  sparse_categorical_crossentropy: { aliases: ['sparseCategoricalCrossentropy'], params: { from_logits: FROM_LOGITS } },
  hinge: { aliases: [], params: {} },
  squared_hinge: { aliases: ['squaredHinge'], params: {} },
  categorical_hinge: { aliases: ['categoricalHinge'], params: {} },
  kl_divergence: { aliases: ['kld', 'kullback_leibler_divergence', 'klDivergence'], params: {} },
  poisson: { aliases: [], params: {} },
  cosine_similarity: { aliases: ['cosineSimilarity', 'cosine_proximity', 'cosineProximity'], params: {} },
  huber: { aliases: ['huber_loss', 'huberLoss'], params: { delta: { default: 1, kind: 'number', gt: 0, describe: 'a number > 0' } } },
  log_cosh: { aliases: ['logcosh', 'logCosh'], params: {} },
};

/** Lower-cased, underscores removed: "sparse_categorical_crossentropy", "sparseCategoricalCrossentropy" and "SparseCategoricalCrossentropy" all meet. */
export function nameKey(name: string): string {
  return name.toLowerCase().replace(/_/g, '');
}

const LOSS_BY_KEY = new Map<string, string>();
for (const [name, spec] of Object.entries(LOSS_SPECS)) {
  LOSS_BY_KEY.set(nameKey(name), name);
  for (const alias of spec.aliases) LOSS_BY_KEY.set(nameKey(alias), name);
}

/** The canonical Keras loss name for a Keras name, alias, tfjs camelCase or Keras class name; undefined when unknown. */
export function canonicalLossName(name: string): string | undefined {
  return LOSS_BY_KEY.get(nameKey(name));
}

/** Mean over every axis but the batch axis: [batch, ...] -> [batch]. */
function perSample(t: tf.Tensor): tf.Tensor {
  if (t.rank === 0) return t.reshape([1]);
  if (t.rank === 1) return t;
  const axes: number[] = [];
  for (let a = 1; a < t.rank; a++) axes.push(a);
  return t.mean(axes);
}


/** Integer class labels ([batch], [batch, 1], ...) as int32 shaped like the prediction without its class axis. */
export function sparseLabels(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  // Keras casts the float labels to int64, truncating toward zero; tfjs's cast does the same.
  return yTrue.reshape(yPred.shape.slice(0, -1)).cast('int32');
}

/** tf.nn.l2_normalize over the last axis (Keras cosine similarity). */
function l2Normalize(x: tf.Tensor): tf.Tensor {
  return x.mul(x.square().sum(-1, true).maximum(1e-12).rsqrt());
}

/** Keras's _maybe_convert_labels: labels that are all 0 or 1 become -1 / 1 (hinge losses). */
function maybeConvertLabels(yTrue: tf.Tensor): tf.Tensor {
  const isBinary = tf.logicalOr(yTrue.equal(0), yTrue.equal(1)).all().cast('float32');
  // isBinary ? 2y - 1 : y, without a data-dependent branch.
  return yTrue.add(isBinary.mul(yTrue.sub(1)));
}

const KERAS_LOSSES: Record<string, (yTrue: tf.Tensor, yPred: tf.Tensor, p: Record<string, unknown>) => tf.Tensor> = {
  mean_squared_error: (t, p) => p.sub(t).square().mean(-1),
  mean_absolute_error: (t, p) => p.sub(t).abs().mean(-1),
  mean_absolute_percentage_error: (t, p) => t.sub(p).div(t.abs().maximum(EPSILON)).abs().mean(-1).mul(100),
  mean_squared_logarithmic_error: (t, p) =>
    p.maximum(EPSILON).add(1).log().sub(t.maximum(EPSILON).add(1).log()).square().mean(-1),
  binary_crossentropy: (t, p, params) => {
    const ls = Number(params.label_smoothing ?? 0);
    if (ls > 0) t = t.mul(1 - ls).add(0.5 * ls);
    if (params.from_logits) {
      // tf.nn.sigmoid_cross_entropy_with_logits: max(x, 0) - x z + log(1 + exp(-|x|)).
      return p.relu().sub(p.mul(t)).add(p.abs().neg().exp().log1p()).mean(-1);
    }
    // keras.backend.binary_crossentropy from probabilities: clip, then log(p + eps).
    const out = p.clipByValue(EPSILON, 1 - EPSILON);
    const bce = t.mul(out.add(EPSILON).log()).add(tf.scalar(1).sub(t).mul(tf.scalar(1).sub(out).add(EPSILON).log()));
    return bce.neg().mean(-1);
  },
  categorical_crossentropy: (t, p, params) => {
    const ls = Number(params.label_smoothing ?? 0);
    if (ls > 0) {
      const numClasses = p.shape[p.rank - 1]!;
      t = t.mul(1 - ls).add(ls / numClasses);
    }
    if (params.from_logits) return t.mul(tf.logSoftmax(p, -1)).sum(-1).neg();
    // keras.backend.categorical_crossentropy: renormalise, clip, -sum(t log p).
    const out = p.div(p.sum(-1, true)).clipByValue(EPSILON, 1 - EPSILON);
    return t.mul(out.log()).sum(-1).neg();
  },
  sparse_categorical_crossentropy: (t, p, params) => {
    const k = p.shape[p.rank - 1]!;
    const labels = sparseLabels(t, p);
    // keras.backend.sparse_categorical_crossentropy: from probabilities it clips and takes the log,
    // then applies sparse_softmax_cross_entropy_with_logits = logsumexp(logits) - logits[label].
    const logits = params.from_logits ? p : p.clipByValue(EPSILON, 1 - EPSILON).log();
    // oneHot * logits instead of gather: no UnsortedSegmentSum gradient needed (wasm lacks it).
    const picked = tf.oneHot(labels, k).mul(logits).sum(-1);
    return tf.logSumExp(logits, -1).sub(picked);
  },
  hinge: (t, p) => tf.scalar(1).sub(maybeConvertLabels(t).mul(p)).relu().mean(-1),
  squared_hinge: (t, p) => tf.scalar(1).sub(maybeConvertLabels(t).mul(p)).relu().square().mean(-1),
  categorical_hinge: (t, p) => {
    const pos = t.mul(p).sum(-1);
    const neg = tf.scalar(1).sub(t).mul(p).max(-1);
    return neg.sub(pos).add(1).relu();
  },
  kl_divergence: (t, p) => {
    const tc = t.clipByValue(EPSILON, 1);
    const pc = p.clipByValue(EPSILON, 1);
    return tc.mul(tc.div(pc).log()).sum(-1);
  },
  poisson: (t, p) => p.sub(t.mul(p.add(EPSILON).log())).mean(-1),
  cosine_similarity: (t, p) => l2Normalize(t).mul(l2Normalize(p)).sum(-1).neg(),
  huber: (t, p, params) => {
    const delta = Number(params.delta ?? 1);
    const absErr = p.sub(t).abs();
    // where(|e| <= d, e^2 / 2, d |e| - d^2 / 2) written without a select: q = min(|e|, d).
    const q = absErr.minimum(delta);
    return q.square().mul(0.5).add(absErr.sub(q).mul(delta)).mean(-1);
  },
  log_cosh: (t, p) => {
    const x = p.sub(t);
    return x.add(tf.softplus(x.mul(-2))).sub(Math.log(2)).mean(-1);
  },
};

/**
 * The Keras loss `cfg.name` with its parameters, as (yTrue, yPred) -> per-sample losses [batch].
 * Targets for sparse_categorical_crossentropy are integer labels given as floats ([batch] or [batch, 1]).
 */
export function lossFunction(cfg: LossConfig): (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor {
  if (cfg.expression !== undefined) return expressionLossFunction(cfg.expression);
  const name = canonicalLossName(cfg.name);
  const impl = name === undefined ? undefined : KERAS_LOSSES[name];
  if (!name || !impl) throw new Error(`unknown loss "${cfg.name}"`);
  const params = cfg.params ?? {};
  const sparse = name === 'sparse_categorical_crossentropy';
  return (yTrue, yPred) =>
    tf.tidy(() => {
      const t = sparse ? yTrue : alignTrue(yTrue, yPred);
      return perSample(impl(t.cast('float32'), yPred.cast('float32'), params));
    });
}
