/**
 * The fixed table of functions an expression may call, named as in Keras's backend (K.sum)
 * and tf (tf.reduce_sum). Each entry says what its arguments are, what shape it gives (for
 * the docs), and applies tfjs ops, so gradients flow through every one of them.
 */
import * as tf from '@tensorflow/tfjs';
import { EPSILON } from '../model-spec/losses.ts';

export type DType = 'float32' | 'int32' | 'bool';

/** What an expression evaluates to: tensors, plain numbers and the literal arguments functions take. */
export type Value = tf.Tensor | number | boolean | null | { dtype: DType } | Value[];

export type ParamKind =
  /** A tensor; a number becomes a float32 scalar. */
  | 'tensor'
  /** A list of tensors. */
  | 'tensors'
  /** An axis (integer, negative counts from the end) or None. */
  | 'axis'
  /** An axis, a list of axes, or None. */
  | 'axes'
  /** A whole number. */
  | 'int'
  /** A list of whole numbers. */
  | 'ints'
  /** A number, or None. */
  | 'number'
  | 'bool'
  | 'dtype';

export interface ParamDef {
  name: string;
  kind: ParamKind;
  /** Absent: the argument is required. */
  default?: number | boolean | null | number[];
}

export interface FunctionDef {
  name: string;
  /** Other names for it (tf's reduce_sum for sum, ...). */
  aliases?: string[];
  params: ParamDef[];
  /** The result's shape in words, for the docs. */
  shape: string;
  apply: (a: Record<string, unknown>) => Value;
}

/** Largest depth of one_hot, so an expression cannot ask for a huge tensor. */
export const MAX_ONE_HOT_DEPTH = 100_000;

/** Most elements any one tensor of an expression may have (256 MiB of float32). */
export const MAX_TENSOR_ELEMENTS = 1 << 26;

/** Throws when a tensor of this shape would be over MAX_TENSOR_ELEMENTS, before it is made. */
export function checkSize(shape: number[], what: string): void {
  const size = shape.reduce((a, b) => a * b, 1);
  if (size > MAX_TENSOR_ELEMENTS) {
    throw new Error(`${what} would make a tensor of shape [${shape.join(', ')}] (${size} elements), over the limit of ${MAX_TENSOR_ELEMENTS}`);
  }
}

const T = (name: string): ParamDef => ({ name, kind: 'tensor' });
const AXIS_NONE: ParamDef = { name: 'axis', kind: 'axes', default: null };
const KEEPDIMS: ParamDef = { name: 'keepdims', kind: 'bool', default: false };
const LAST_AXIS: ParamDef = { name: 'axis', kind: 'axis', default: -1 };

type Tn = tf.Tensor;
const t = (a: Record<string, unknown>, name: string) => a[name] as Tn;
const axes = (a: Record<string, unknown>) => (a.axis ?? undefined) as number | number[] | undefined;

/** A comparison with a zero gradient, as TensorFlow treats it (tfjs has no gradient for these kernels). */
function comparison(op: (x: Tn, y: Tn) => Tn): (x: Tn, y: Tn) => Tn {
  const withGrad = tf.customGrad((x, y) => ({
    value: op(x as Tn, y as Tn),
    gradFunc: () => [tf.zerosLike(x as Tn), tf.zerosLike(y as Tn)],
  }));
  return (x, y) => withGrad(x, y);
}

export const compare = {
  '<': comparison((x, y) => tf.less(x, y)),
  '<=': comparison((x, y) => tf.lessEqual(x, y)),
  '>': comparison((x, y) => tf.greater(x, y)),
  '>=': comparison((x, y) => tf.greaterEqual(x, y)),
  '==': comparison((x, y) => tf.equal(x, y)),
  '!=': comparison((x, y) => tf.notEqual(x, y)),
};

/** K.dot / the @ operator: matmul, with a rank-2 right side applied to the last axis of any left side. */
export function dot(x: Tn, y: Tn): Tn {
  if (x.rank < 2 || y.rank < 2) throw new Error(`matmul needs tensors of rank 2 or more, got shapes [${x.shape.join(', ')}] and [${y.shape.join(', ')}]`);
  if (x.rank > 2 && y.rank === 2) {
    const flat = x.reshape([-1, x.shape[x.rank - 1]!]);
    return tf.matMul(flat, y).reshape([...x.shape.slice(0, -1), y.shape[1]!]);
  }
  return tf.matMul(x, y);
}

/** tf.where with its three arguments broadcast against each other (as TensorFlow 2 does). */
function where(cond: Tn, x: Tn, y: Tn): Tn {
  const shape = tf.backend_util.assertAndGetBroadcastShape(tf.backend_util.assertAndGetBroadcastShape(cond.shape, x.shape), y.shape);
  const b = (v: Tn) => (v.shape.length === shape.length && v.shape.every((d, i) => d === shape[i]) ? v : tf.broadcastTo(v, shape));
  const [bx, by] = tf.backend_util.upcastType(x.dtype, y.dtype) === x.dtype ? [x, y.cast(x.dtype)] : [x.cast(y.dtype), y];
  return tf.where(b(cond.cast('bool')), b(bx), b(by));
}

function reduction(name: string, op: (x: Tn, axis: number | number[] | undefined, keep: boolean) => Tn, aliases: string[] = []): FunctionDef {
  return {
    name,
    aliases,
    params: [T('x'), AXIS_NONE, KEEPDIMS],
    shape: 'x without the reduced axes (all of them when axis is None); kept as 1 with keepdims=true',
    apply: (a) => op(t(a, 'x'), axes(a), a.keepdims as boolean),
  };
}

function unary(name: string, op: (x: Tn) => Tn, aliases: string[] = []): FunctionDef {
  return { name, aliases, params: [T('x')], shape: 'same as x', apply: (a) => op(t(a, 'x')) };
}

function binary(name: string, op: (x: Tn, y: Tn) => Tn, aliases: string[] = []): FunctionDef {
  return { name, aliases, params: [T('x'), T('y')], shape: 'x and y broadcast together', apply: (a) => op(t(a, 'x'), t(a, 'y')) };
}

/** Keras 2's hard_sigmoid: clip(0.2 x + 0.5, 0, 1). */
const hardSigmoid = (x: Tn) => x.mul(0.2).add(0.5).clipByValue(0, 1);

export const FUNCTIONS: FunctionDef[] = [
  // Reductions.
  reduction('sum', (x, ax, k) => x.sum(ax, k), ['reduce_sum']),
  reduction('mean', (x, ax, k) => x.mean(ax, k), ['reduce_mean']),
  reduction('max', (x, ax, k) => x.max(ax, k), ['reduce_max']),
  reduction('min', (x, ax, k) => x.min(ax, k), ['reduce_min']),
  reduction('prod', (x, ax, k) => x.prod(ax, k), ['reduce_prod']),
  reduction('logsumexp', (x, ax, k) => tf.logSumExp(x, ax, k), ['reduce_logsumexp']),
  reduction('var', (x, ax, k) => tf.moments(x, ax, k).variance, ['variance', 'reduce_variance']),
  reduction('std', (x, ax, k) => tf.moments(x, ax, k).variance.sqrt(), ['reduce_std']),
  { name: 'argmax', params: [T('x'), LAST_AXIS], shape: 'x without axis (int32)', apply: (a) => t(a, 'x').argMax(a.axis as number) },
  { name: 'argmin', params: [T('x'), LAST_AXIS], shape: 'x without axis (int32)', apply: (a) => t(a, 'x').argMin(a.axis as number) },
  { name: 'cumsum', params: [T('x'), { name: 'axis', kind: 'axis', default: 0 }], shape: 'same as x', apply: (a) => t(a, 'x').cumsum(a.axis as number) },

  // Element-wise functions of one tensor.
  unary('square', (x) => x.square()),
  unary('sqrt', (x) => x.sqrt()),
  unary('rsqrt', (x) => x.rsqrt()),
  unary('exp', (x) => x.exp()),
  unary('log', (x) => x.log()),
  unary('log1p', (x) => x.log1p()),
  unary('abs', (x) => x.abs()),
  unary('sign', (x) => x.sign()),
  unary('negative', (x) => x.neg(), ['neg']),
  unary('reciprocal', (x) => x.reciprocal()),
  unary('floor', (x) => x.floor()),
  unary('ceil', (x) => x.ceil()),
  unary('round', (x) => x.round()),
  unary('sin', (x) => x.sin()),
  unary('cos', (x) => x.cos()),
  unary('erf', (x) => x.erf()),
  unary('sigmoid', (x) => x.sigmoid()),
  unary('hard_sigmoid', hardSigmoid),
  unary('tanh', (x) => x.tanh()),
  unary('softplus', (x) => x.softplus()),
  unary('softsign', (x) => x.div(x.abs().add(1))),
  unary('selu', (x) => x.selu()),
  unary('swish', (x) => x.mul(x.sigmoid()), ['silu']),
  unary('relu6', (x) => x.clipByValue(0, 6)),
  unary('zeros_like', (x) => tf.zerosLike(x)),
  unary('ones_like', (x) => tf.onesLike(x)),
  {
    name: 'relu',
    params: [T('x'), { name: 'alpha', kind: 'number', default: 0 }, { name: 'max_value', kind: 'number', default: null }, { name: 'threshold', kind: 'number', default: 0 }],
    shape: 'same as x',
    // K.relu: x for x >= threshold, alpha * (x - threshold) below, capped at max_value.
    apply: (a) => {
      const x = t(a, 'x');
      const alpha = a.alpha as number;
      const thr = a.threshold as number;
      let y = thr === 0 ? x.relu() : x.mul(compare['>='](x, tf.scalar(thr)).cast(x.dtype));
      if (alpha !== 0) y = y.add(x.sub(thr).minimum(0).mul(alpha));
      return a.max_value === null ? y : y.minimum(a.max_value as number);
    },
  },
  { name: 'elu', params: [T('x'), { name: 'alpha', kind: 'number', default: 1 }], shape: 'same as x', apply: (a) => {
    const x = t(a, 'x');
    return a.alpha === 1 ? x.elu() : where(compare['>'](x, tf.scalar(0)), x, x.exp().sub(1).mul(a.alpha as number));
  } },
  { name: 'leaky_relu', params: [T('x'), { name: 'alpha', kind: 'number', default: 0.2 }], shape: 'same as x', apply: (a) => tf.leakyRelu(t(a, 'x'), a.alpha as number) },
  { name: 'softmax', params: [T('x'), LAST_AXIS], shape: 'same as x', apply: (a) => {
    const x = t(a, 'x');
    const ax = a.axis as number;
    return ax === -1 || ax === x.rank - 1 ? x.softmax() : x.sub(x.max(ax, true)).exp().div(x.sub(x.max(ax, true)).exp().sum(ax, true));
  } },
  { name: 'log_softmax', params: [T('x'), LAST_AXIS], shape: 'same as x', apply: (a) => tf.logSoftmax(t(a, 'x'), a.axis as number) },
  { name: 'l2_normalize', params: [T('x'), LAST_AXIS], shape: 'same as x', apply: (a) => {
    const x = t(a, 'x');
    return x.mul(x.square().sum(a.axis as number, true).maximum(1e-12).rsqrt());
  } },
  { name: 'clip', aliases: ['clip_by_value'], params: [T('x'), { name: 'min_value', kind: 'number' }, { name: 'max_value', kind: 'number' }], shape: 'same as x', apply: (a) => {
    const lo = a.min_value as number;
    const hi = a.max_value as number;
    if (lo > hi) throw new Error(`clip: min_value ${lo} is above max_value ${hi}`);
    return t(a, 'x').clipByValue(lo, hi);
  } },
  { name: 'cast', params: [T('x'), { name: 'dtype', kind: 'dtype' }], shape: 'same as x', apply: (a) => t(a, 'x').cast((a.dtype as { dtype: DType }).dtype) },
  { name: 'stop_gradient', params: [T('x')], shape: 'same as x', apply: (a) => stopGradient(t(a, 'x')) },

  // Element-wise functions of two or three tensors.
  binary('pow', (x, y) => tf.pow(x, y)),
  binary('maximum', (x, y) => tf.maximum(x, y)),
  binary('minimum', (x, y) => tf.minimum(x, y)),
  binary('add', (x, y) => tf.add(x, y)),
  binary('subtract', (x, y) => tf.sub(x, y)),
  binary('multiply', (x, y) => tf.mul(x, y)),
  binary('divide', (x, y) => tf.div(x, y)),
  binary('divide_no_nan', (x, y) => tf.divNoNan(x, y)),
  binary('squared_difference', (x, y) => tf.squaredDifference(x, y)),
  binary('logical_and', (x, y) => tf.logicalAnd(x.cast('bool'), y.cast('bool'))),
  binary('logical_or', (x, y) => tf.logicalOr(x.cast('bool'), y.cast('bool'))),
  unary('logical_not', (x) => tf.logicalNot(x.cast('bool'))),
  { name: 'where', params: [T('condition'), T('x'), T('y')], shape: 'condition, x and y broadcast together', apply: (a) => where(t(a, 'condition'), t(a, 'x'), t(a, 'y')) },

  // Linear algebra and shape.
  { name: 'matmul', aliases: ['dot'], params: [T('a'), T('b'), { name: 'transpose_a', kind: 'bool', default: false }, { name: 'transpose_b', kind: 'bool', default: false }],
    shape: '[..., n, m] @ [..., m, k] -> [..., n, k]; a [m, k] right side applies to the last axis of any a', apply: (a) => {
      const x = t(a, 'a');
      const y = t(a, 'b');
      if (a.transpose_a || a.transpose_b) return tf.matMul(x, y, a.transpose_a as boolean, a.transpose_b as boolean);
      return dot(x, y);
    } },
  { name: 'transpose', params: [T('x'), { name: 'perm', kind: 'ints', default: null }], shape: 'x with its axes permuted (reversed by default)', apply: (a) => t(a, 'x').transpose((a.perm ?? undefined) as number[] | undefined) },
  { name: 'reshape', params: [T('x'), { name: 'shape', kind: 'ints' }], shape: 'shape (batch axis included; one -1 is inferred)', apply: (a) => t(a, 'x').reshape(a.shape as number[]) },
  { name: 'batch_flatten', aliases: ['flatten'], params: [T('x')], shape: '[batch, product of the other axes]', apply: (a) => t(a, 'x').reshape([t(a, 'x').shape[0]!, -1]) },
  { name: 'expand_dims', params: [T('x'), LAST_AXIS], shape: 'x with a 1 inserted at axis', apply: (a) => t(a, 'x').expandDims(a.axis as number) },
  { name: 'squeeze', params: [T('x'), { name: 'axis', kind: 'axes', default: null }], shape: 'x without its size-1 axes (or only those named)', apply: (a) => {
    const ax = axes(a);
    return t(a, 'x').squeeze(ax === undefined ? undefined : [ax].flat());
  } },
  { name: 'concat', aliases: ['concatenate'], params: [{ name: 'tensors', kind: 'tensors' }, LAST_AXIS], shape: 'the tensors joined along axis', apply: (a) => tf.concat(a.tensors as Tn[], a.axis as number) },
  { name: 'stack', params: [{ name: 'tensors', kind: 'tensors' }, { name: 'axis', kind: 'axis', default: 0 }], shape: 'the tensors stacked on a new axis', apply: (a) => tf.stack(a.tensors as Tn[], a.axis as number) },
  { name: 'slice', params: [T('x'), { name: 'begin', kind: 'ints' }, { name: 'size', kind: 'ints' }], shape: 'size (-1 takes the rest of an axis)', apply: (a) => t(a, 'x').slice(a.begin as number[], a.size as number[]) },
  { name: 'gather', params: [T('x'), { name: 'indices', kind: 'ints' }, { name: 'axis', kind: 'axis', default: 0 }], shape: 'x with axis replaced by len(indices)', apply: (a) => {
    const x = t(a, 'x');
    const ax = a.axis as number;
    const size = x.shape[ax < 0 ? x.rank + ax : ax];
    const idx = a.indices as number[];
    if (size !== undefined && idx.some((i) => i < 0 || i >= size)) throw new Error(`gather: indices must be in [0, ${size - 1}] for axis ${ax}`);
    return tf.gather(x, idx, ax);
  } },
  { name: 'one_hot', params: [T('indices'), { name: 'depth', kind: 'int' }], shape: 'indices with a new last axis of size depth', apply: (a) => {
    const depth = a.depth as number;
    if (depth < 1 || depth > MAX_ONE_HOT_DEPTH) throw new Error(`one_hot: depth must be from 1 to ${MAX_ONE_HOT_DEPTH}, got ${depth}`);
    const idx = t(a, 'indices');
    checkSize([...idx.shape, depth], 'one_hot()');
    return tf.oneHot(idx.cast('int32'), depth).cast('float32');
  } },
  { name: 'epsilon', params: [], shape: 'a number: 1e-7, Keras\'s fuzz factor', apply: () => EPSILON },
];

/** tf.stop_gradient: the value passes, no gradient does. */
const stopGradient = (x: Tn): Tn => tf.customGrad((v) => ({ value: (v as Tn).clone(), gradFunc: (dy) => tf.zerosLike(dy as Tn) }))(x);

const BY_NAME = new Map<string, FunctionDef>();
for (const def of FUNCTIONS) for (const n of [def.name, ...(def.aliases ?? [])]) BY_NAME.set(n, def);

/** The function an expression calls by this name; undefined when it is not in the table. */
export function findFunction(name: string): FunctionDef | undefined {
  return BY_NAME.get(name);
}

/** Every callable name, aliases included. */
export const FUNCTION_NAMES: string[] = [...BY_NAME.keys()].sort();
