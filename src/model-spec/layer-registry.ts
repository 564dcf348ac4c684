/**
 * The layer types the native spec accepts: their Keras class names, their arguments in Keras
 * snake_case (tfjs camelCase is accepted too), how each argument is validated and converted
 * to what tfjs takes, and the Keras defaults where tfjs's differ.
 */
import * as tf from '@tensorflow/tfjs';
import { SpecError } from '../errors.ts';
import { KerasReLU } from './relu-layer.ts';
import { Subtract } from './custom-layers.ts';
import { KerasFlatten, KerasGRU, MultiHeadAttention, Normalization, ResetAfterGRUCell } from './keras-layers.ts';
import { registerExpressionActivation } from '../expressions/expression-activation.ts';
import { customLayerParams, ExpressionLayer, readCustomLayerSpec, type CustomLayerSpec } from '../expressions/expression-layer.ts';
import { ExpressionError, expressionSpecError } from '../expressions/parser.ts';

/** A shape with its batch dimension first (null where any size fits). */
export type BatchShape = Array<number | null>;

type Converter = (value: unknown, argName: string, path: string) => unknown;

export interface ArgSpec {
  /** Validates a user value and converts it to what tfjs takes; throws SpecError at `path`. */
  convert: Converter;
  /** Keras's default, applied when the argument is absent and tfjs's default differs. */
  kerasDefault?: unknown;
  /**
   * An argument Keras has and tfjs does not: accepted only with a value for which the result
   * is the same as without it, and then dropped. Says in words what is accepted.
   */
  onlyIf?: { test: (value: unknown) => boolean; accepted: string };
}

export interface LayerDef {
  /** The Keras class name (also the tfjs class name, and the summary type). */
  className: string;
  /** Other spellings of the type, compared case-insensitively without underscores. */
  aliases?: string[];
  /** Arguments by camelCase name, besides the common ones every layer takes. */
  args: Record<string, ArgSpec>;
  /** camelCase names of the arguments that must be given. */
  required?: string[];
  /** Other camelCase spellings of an argument (`alpha` for `negativeSlope`). */
  argAliases?: Record<string, string>;
  /** A nested layer spec argument (Bidirectional, TimeDistributed). */
  wrapsLayer?: boolean;
  /** Extra checks on the converted arguments. */
  validate?: (args: Record<string, unknown>, path: string, argPath: (name: string) => string) => void;
  /** Checks against the input shape (batch dim included) before the layer is called. */
  checkInput?: (args: Record<string, unknown>, inputShape: BatchShape, argPath: (name: string) => string) => void;
  /** Adjusts the made layer to its input before it is called (after checkInput). */
  beforeCall?: (layer: tf.layers.Layer, args: Record<string, unknown>, inputShape: BatchShape) => void;
  /** Parameters the layer will create on this input, computed before tfjs allocates them. */
  estimateParams?: (args: Record<string, unknown>, inputShape: BatchShape) => number;
  /** Builds the tfjs layer from converted arguments. */
  create: (args: Record<string, unknown>) => tf.layers.Layer;
}

// ---------------------------------------------------------------------------------------------
// Names

/** Keras's `to_snake_case` for class names: "LeakyReLU" -> "leaky_re_lu", "Conv2D" -> "conv2d". */
export function kerasSnakeCase(name: string): string {
  const intermediate = name.replace(/(.)([A-Z][a-z0-9]+)/g, '$1_$2');
  const insecure = intermediate.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
  return insecure.startsWith('_') ? `private${insecure}` : insecure;
}

/** "kernel_size" -> "kernelSize"; camelCase stays as it is. */
export function snakeToCamel(key: string): string {
  return key.replace(/_([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** "kernelSize" -> "kernel_size", for messages (the wire speaks snake_case). */
export function camelToSnake(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function fail(path: string, message: string): never {
  throw new SpecError(path, message);
}

// ---------------------------------------------------------------------------------------------
// Argument converters

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function intArg(opts: { min?: number; max?: number; nullable?: boolean } = {}): Converter {
  return (v, name, path) => {
    if (v === null && opts.nullable) return null;
    const { min, max } = opts;
    const what =
      min === 1 && max === undefined ? 'a positive integer'
      : min === 0 && max === undefined ? 'a non-negative integer'
      : min !== undefined && max !== undefined ? `an integer from ${min} to ${max}`
      : min !== undefined ? `an integer >= ${min}`
      : 'an integer';
    if (!isInt(v) || (min !== undefined && v < min) || (max !== undefined && v > max)) {
      fail(path, `${name} must be ${what}${opts.nullable ? ' or null' : ''} (got ${describe(v)})`);
    }
    return v;
  };
}

function numArg(opts: { min?: number; max?: number; minOpen?: boolean; maxOpen?: boolean; nullable?: boolean } = {}): Converter {
  return (v, name, path) => {
    if (v === null && opts.nullable) return null;
    const { min, max, minOpen, maxOpen } = opts;
    const ok =
      typeof v === 'number' && Number.isFinite(v) &&
      (min === undefined || (minOpen ? v > min : v >= min)) &&
      (max === undefined || (maxOpen ? v < max : v <= max));
    if (!ok) {
      let range = '';
      if (min !== undefined && max !== undefined) range = ` in ${minOpen ? '(' : '['}${min}, ${max}${maxOpen ? ')' : ']'}`;
      else if (min !== undefined) range = minOpen ? ` > ${min}` : ` >= ${min}`;
      else if (max !== undefined) range = maxOpen ? ` < ${max}` : ` <= ${max}`;
      fail(path, `${name} must be a number${range}${opts.nullable ? ' or null' : ''} (got ${describe(v)})`);
    }
    return v;
  };
}

const boolArg: Converter = (v, name, path) => {
  if (typeof v !== 'boolean') fail(path, `${name} must be true or false (got ${describe(v)})`);
  return v;
};

/** A string from a fixed set; `values` maps each accepted spelling to the tfjs value. */
function enumArg(values: Record<string, string | null>, nullable = false): Converter {
  return (v, name, path) => {
    if (v === null && nullable) return null;
    if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(values, v)) return values[v];
    const shown = [...new Set(Object.keys(values).filter((k) => !/[A-Z]/.test(k)))];
    fail(path, `${name} must be one of ${shown.map((s) => `"${s}"`).join(', ')}${nullable ? ' or null' : ''} (got ${describe(v)})`);
  };
}

/** An int, or a list of `rank` ints (kernel_size, strides, pool_size, dilation_rate, size). */
function intTupleArg(rank: number, opts: { min?: number; nullable?: boolean; alwaysList?: boolean } = {}): Converter {
  const min = opts.min ?? 1;
  return (v, name, path) => {
    if (v === null && opts.nullable) return null;
    const minText = min === 1 ? 'positive integer' : min === 0 ? 'non-negative integer' : `integer >= ${min}`;
    if (isInt(v) && v >= min) return opts.alwaysList ? new Array(rank).fill(v) : rank === 1 ? v : new Array(rank).fill(v);
    if (Array.isArray(v) && v.length === rank && v.every((x) => isInt(x) && x >= min)) return rank === 1 && !opts.alwaysList ? v[0] : [...v];
    fail(path, `${name} must be a ${minText} or a list of ${rank} ${minText}s${opts.nullable ? ' or null' : ''} (got ${describe(v)})`);
  };
}

/** A per-sample shape: a list of positive ints or null (input_shape, shape). */
export const shapeArg: Converter = (v, name, path) => {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => x === null || (isInt(x) && x > 0))) {
    fail(path, `${name} must be a non-empty list of positive integers (null for any size) (got ${describe(v)})`);
  }
  return [...v];
};

/** A shape with the batch dim first (batch_input_shape, batch_shape). */
export const batchShapeArg: Converter = (v, name, path) => {
  if (!Array.isArray(v) || v.length < 2 || !v.every((x) => x === null || (isInt(x) && x > 0))) {
    fail(path, `${name} must be a list of at least 2 positive integers or nulls, the batch size first (got ${describe(v)})`);
  }
  return [...v];
};

const targetShapeArg: Converter = (v, name, path) => {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => isInt(x) && (x > 0 || x === -1))) {
    fail(path, `${name} must be a non-empty list of positive integers, with at most one -1 (got ${describe(v)})`);
  }
  if (v.filter((x) => x === -1).length > 1) fail(path, `${name} may contain at most one -1 (got ${describe(v)})`);
  return [...v];
};

/** An axis or list of axes (ints, negative counting from the end). */
function axisArg(allowList: boolean): Converter {
  return (v, name, path) => {
    if (isInt(v)) return v;
    if (allowList && Array.isArray(v) && v.length > 0 && v.every(isInt)) return [...v];
    fail(path, `${name} must be an integer${allowList ? ' or a list of integers' : ''} (got ${describe(v)})`);
  };
}

function intListArg(opts: { min?: number; allowNull?: boolean } = {}): Converter {
  return (v, name, path) => {
    const ok = Array.isArray(v) && v.length > 0 &&
      v.every((x) => (x === null && opts.allowNull) || (isInt(x) && (opts.min === undefined || x >= opts.min)));
    if (!ok) fail(path, `${name} must be a non-empty list of integers${opts.allowNull ? ' (or nulls)' : ''} (got ${describe(v)})`);
    return [...(v as unknown[])];
  };
}

/** int | [int, int] | [[int, int], [int, int]] (ZeroPadding2D padding, Cropping2D cropping). */
const pairs2dArg: Converter = (v, name, path) => {
  const nn = (x: unknown) => isInt(x) && x >= 0;
  if (nn(v)) return [[v, v], [v, v]];
  if (Array.isArray(v) && v.length === 2 && v.every(nn)) return [[v[0], v[0]], [v[1], v[1]]];
  if (Array.isArray(v) && v.length === 2 && v.every((p) => Array.isArray(p) && p.length === 2 && p.every(nn))) {
    return (v as number[][]).map((p) => [...p]);
  }
  fail(path, `${name} must be a non-negative integer, a list of 2 of them, or 2 lists of 2 (got ${describe(v)})`);
};

const dtypeArg: Converter = (v, name, path) => {
  if (v !== 'float32') fail(path, `${name} must be "float32" (got ${describe(v)})`);
  return v;
};

const seedArg: Converter = (v, name, path) => {
  if (v === null) return undefined;
  // Python accepts any number here (and public configs hold seeds like 0.2); only randomness depends on it.
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, `${name} must be an integer or null (got ${describe(v)})`);
  return Math.trunc(v);
};

// Activations: Keras names -> tfjs identifiers.
const ACTIVATIONS: Record<string, string> = {
  linear: 'linear',
  relu: 'relu',
  relu6: 'relu6',
  elu: 'elu',
  selu: 'selu',
  sigmoid: 'sigmoid',
  hard_sigmoid: 'hardSigmoid',
  hardSigmoid: 'hardSigmoid',
  tanh: 'tanh',
  softmax: 'softmax',
  log_softmax: 'logSoftmax',
  logSoftmax: 'logSoftmax',
  softplus: 'softplus',
  softsign: 'softsign',
  swish: 'swish',
  silu: 'swish',
  gelu: 'gelu',
  mish: 'mish',
  exponential: 'exponential', // ours: ExponentialActivation in custom-layers.ts
};

/** The Keras activation names accepted (for docs and messages). */
export const SUPPORTED_ACTIVATIONS = Object.keys(ACTIVATIONS).filter((k) => !/[A-Z]/.test(k));

/** {"expression": "x * sigmoid(x)"}: an activation written in the expression language. */
function expressionActivation(v: Record<string, unknown>, name: string, path: string): string {
  for (const key of Object.keys(v)) {
    if (key !== 'expression') fail(`${path}.${key}`, `${name}: an expression activation takes only "expression", like {"expression": "x * sigmoid(x)"}`);
  }
  try {
    return registerExpressionActivation(v.expression);
  } catch (err) {
    if (!(err instanceof ExpressionError)) throw err;
    throw expressionSpecError(err, `${path}.expression`, `${name}: ${err.message}`);
  }
}

const activationArg: Converter = (v, name, path) => {
  if (v === null) return 'linear';
  if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(ACTIVATIONS, v)) return ACTIVATIONS[v];
  if (v && typeof v === 'object' && !Array.isArray(v) && 'expression' in v) return expressionActivation(v as Record<string, unknown>, name, path);
  fail(path, `${name}: unknown activation ${describe(v)}; valid activations: ${SUPPORTED_ACTIVATIONS.join(', ')}, or {"expression": "..."} of x`);
};

/** Reads `{"class_name": "X", "config": {...}}` (Keras) or `{"type": "x", ...params}` (native). */
function namedObject(v: unknown, name: string, path: string): { kind: string; params: Record<string, unknown>; paramsPath: string } | undefined {
  if (typeof v === 'string') return { kind: v, params: {}, paramsPath: path };
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const rec = v as Record<string, unknown>;
    if (typeof rec.class_name === 'string' || typeof rec.className === 'string') {
      const kind = (rec.class_name ?? rec.className) as string;
      const cfg = rec.config ?? {};
      if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) fail(`${path}.config`, `${name}.config must be an object`);
      return { kind, params: cfg as Record<string, unknown>, paramsPath: `${path}.config` };
    }
    if (typeof rec.type === 'string') {
      const { type, ...params } = rec;
      return { kind: type as string, params, paramsPath: path };
    }
  }
  return undefined;
}

const normKey = (s: string) => s.toLowerCase().replace(/_/g, '');

/** Runs a tfjs constructor; what it throws becomes a SpecError at the argument. */
function made<T>(path: string, name: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    fail(path, `${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Validates the parameters of an initializer/regularizer/constraint against what it takes. */
function readParams(
  params: Record<string, unknown>,
  accepted: Record<string, Converter>,
  what: string,
  paramsPath: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) {
    const camel = snakeToCamel(key);
    const conv = accepted[camel];
    if (!conv) {
      const names = Object.keys(accepted).map(camelToSnake);
      fail(`${paramsPath}.${key}`, `unknown argument "${key}" for ${what}; accepted: ${names.length ? names.join(', ') : 'none'}`);
    }
    const converted = conv(value, key, `${paramsPath}.${key}`);
    if (converted !== undefined) out[camel] = converted;
  }
  return out;
}

const fanMode = enumArg({ fan_in: 'fanIn', fan_out: 'fanOut', fan_avg: 'fanAvg', fanIn: 'fanIn', fanOut: 'fanOut', fanAvg: 'fanAvg' });
const distribution = enumArg({
  truncated_normal: 'normal', // tfjs's "normal" draws from a truncated normal, as Keras's truncated_normal does
  normal: 'normal',
  untruncated_normal: 'normal',
  uniform: 'uniform',
  truncatedNormal: 'normal',
});

type Initializer = ReturnType<typeof tf.initializers.ones>;
type Regularizer = ReturnType<typeof tf.regularizers.l1>;
type Constraint = ReturnType<typeof tf.constraints.nonNeg>;
type InitFactory = { params: Record<string, Converter>; make: (p: Record<string, unknown>) => Initializer };
const seedOnly = { seed: seedArg };
const INITIALIZERS: Record<string, InitFactory> = {
  zeros: { params: {}, make: () => tf.initializers.zeros() },
  ones: { params: {}, make: () => tf.initializers.ones() },
  constant: { params: { value: numArg() }, make: (p) => tf.initializers.constant({ value: (p.value as number) ?? 0 }) },
  randomnormal: { params: { mean: numArg(), stddev: numArg({ min: 0 }), seed: seedArg }, make: (p) => tf.initializers.randomNormal(p) },
  randomuniform: { params: { minval: numArg(), maxval: numArg(), seed: seedArg }, make: (p) => tf.initializers.randomUniform(p) },
  truncatednormal: { params: { mean: numArg(), stddev: numArg({ min: 0 }), seed: seedArg }, make: (p) => tf.initializers.truncatedNormal(p) },
  identity: { params: { gain: numArg() }, make: (p) => tf.initializers.identity(p) },
  orthogonal: { params: { gain: numArg(), seed: seedArg }, make: (p) => tf.initializers.orthogonal(p) },
  variancescaling: {
    params: { scale: numArg({ min: 0, minOpen: true }), mode: fanMode, distribution, seed: seedArg },
    make: (p) => tf.initializers.varianceScaling(p as Parameters<typeof tf.initializers.varianceScaling>[0]),
  },
  glorotuniform: { params: seedOnly, make: (p) => tf.initializers.glorotUniform(p) },
  glorotnormal: { params: seedOnly, make: (p) => tf.initializers.glorotNormal(p) },
  heuniform: { params: seedOnly, make: (p) => tf.initializers.heUniform(p) },
  henormal: { params: seedOnly, make: (p) => tf.initializers.heNormal(p) },
  lecununiform: { params: seedOnly, make: (p) => tf.initializers.leCunUniform(p) },
  lecunnormal: { params: seedOnly, make: (p) => tf.initializers.leCunNormal(p) },
};
// Keras 3 names Orthogonal and Identity "OrthogonalInitializer" / "IdentityInitializer".
const INITIALIZER_ALIASES: Record<string, string> = {
  zero: 'zeros', one: 'ones', normal: 'randomnormal', uniform: 'randomuniform', orthogonalinitializer: 'orthogonal', identityinitializer: 'identity',
};
const INITIALIZER_NAMES = [
  'glorot_uniform', 'glorot_normal', 'he_uniform', 'he_normal', 'lecun_uniform', 'lecun_normal', 'zeros', 'ones',
  'constant', 'random_normal', 'random_uniform', 'truncated_normal', 'orthogonal', 'identity', 'variance_scaling',
];

/** Validates an initializer (name or {"class_name", "config"}) and makes the tfjs object. */
export const readInitializer: Converter = (v, name, path) => initializerArg(v, name, path);

const initializerArg: Converter = (v, name, path) => {
  const obj = namedObject(v, name, path);
  if (!obj) fail(path, `${name} must be an initializer name or {"class_name": ..., "config": {...}} (got ${describe(v)})`);
  let key = normKey(obj.kind);
  key = INITIALIZER_ALIASES[key] ?? key;
  const factory = INITIALIZERS[key];
  if (!factory) fail(path, `${name}: unknown initializer ${describe(obj.kind)}; valid initializers: ${INITIALIZER_NAMES.join(', ')}`);
  const params = readParams(obj.params, factory.params, `initializer ${obj.kind}`, obj.paramsPath);
  return made(path, name, () => factory.make(params));
};

const REGULARIZERS: Record<string, InitFactory | { params: Record<string, Converter>; make: (p: Record<string, unknown>) => Regularizer }> = {
  l1: { params: { l1: numArg({ min: 0 }) }, make: (p) => tf.regularizers.l1({ l1: (p.l1 as number) ?? 0.01 }) },
  l2: { params: { l2: numArg({ min: 0 }) }, make: (p) => tf.regularizers.l2({ l2: (p.l2 as number) ?? 0.01 }) },
  l1l2: {
    params: { l1: numArg({ min: 0 }), l2: numArg({ min: 0 }) },
    // Keras: the string "l1_l2" means 0.01 each; an L1L2 object defaults to 0 for a missing one.
    make: (p) => tf.regularizers.l1l2({ l1: p.l1 as number | undefined, l2: p.l2 as number | undefined }),
  },
};

/** Validates a regularizer ("l1", "l2", "l1_l2" or {"class_name", "config"}) and makes the tfjs object. */
export const readRegularizer: Converter = (v, name, path) => regularizerArg(v, name, path);

const regularizerArg: Converter = (v, name, path) => {
  if (v === null) return undefined;
  const obj = namedObject(v, name, path);
  if (!obj) fail(path, `${name} must be "l1", "l2", "l1_l2" or {"class_name": ..., "config": {...}} (got ${describe(v)})`);
  const key = normKey(obj.kind);
  const factory = REGULARIZERS[key];
  if (!factory) fail(path, `${name}: unknown regularizer ${describe(obj.kind)}; valid regularizers: l1, l2, l1_l2`);
  const params = readParams(obj.params, factory.params, `regularizer ${obj.kind}`, obj.paramsPath);
  if (key === 'l1l2' && typeof v !== 'string') {
    params.l1 ??= 0;
    params.l2 ??= 0;
  }
  return made(path, name, () => factory.make(params));
};

const CONSTRAINTS: Record<string, { params: Record<string, Converter>; make: (p: Record<string, unknown>) => Constraint }> = {
  maxnorm: { params: { maxValue: numArg({ min: 0 }), axis: intArg() }, make: (p) => tf.constraints.maxNorm(p) },
  nonneg: { params: {}, make: () => tf.constraints.nonNeg() },
  unitnorm: { params: { axis: intArg() }, make: (p) => tf.constraints.unitNorm(p) },
  minmaxnorm: {
    params: { minValue: numArg({ min: 0 }), maxValue: numArg({ min: 0 }), rate: numArg({ min: 0, max: 1 }), axis: intArg() },
    make: (p) => tf.constraints.minMaxNorm(p),
  },
};

const constraintArg: Converter = (v, name, path) => {
  if (v === null) return undefined;
  const obj = namedObject(v, name, path);
  if (!obj) fail(path, `${name} must be a constraint name or {"class_name": ..., "config": {...}} (got ${describe(v)})`);
  const factory = CONSTRAINTS[normKey(obj.kind)];
  if (!factory) fail(path, `${name}: unknown constraint ${describe(obj.kind)}; valid constraints: max_norm, min_max_norm, non_neg, unit_norm`);
  const params = readParams(obj.params, factory.params, `constraint ${obj.kind}`, obj.paramsPath);
  return made(path, name, () => factory.make(params));
};

const padding = (causal = false) =>
  enumArg(causal ? { valid: 'valid', same: 'same', causal: 'causal' } : { valid: 'valid', same: 'same' });
const dataFormat = enumArg({
  channels_last: 'channelsLast',
  channels_first: 'channelsFirst',
  channelsLast: 'channelsLast',
  channelsFirst: 'channelsFirst',
});

const A = {
  int: (opts?: { min?: number; max?: number; nullable?: boolean }): ArgSpec => ({ convert: intArg(opts) }),
  posInt: (): ArgSpec => ({ convert: intArg({ min: 1 }) }),
  num: (opts?: Parameters<typeof numArg>[0]): ArgSpec => ({ convert: numArg(opts) }),
  rate: (): ArgSpec => ({ convert: numArg({ min: 0, max: 1, maxOpen: true }) }),
  bool: (): ArgSpec => ({ convert: boolArg }),
  act: (): ArgSpec => ({ convert: activationArg }),
  init: (): ArgSpec => ({ convert: initializerArg }),
  reg: (): ArgSpec => ({ convert: regularizerArg }),
  con: (): ArgSpec => ({ convert: constraintArg }),
  seed: (): ArgSpec => ({ convert: seedArg }),
  onlyIf: (test: (v: unknown) => boolean, accepted: string): ArgSpec => ({ convert: (v) => v, onlyIf: { test, accepted } }),
};
const isNull = (v: unknown) => v === null;
const isFalse = (v: unknown) => v === false;
const isOne = (v: unknown) => v === 1 || (Array.isArray(v) && v.every((x) => x === 1));

// ---------------------------------------------------------------------------------------------
// Parameter estimates (to refuse a model over the limit before tfjs allocates its weights)

const lastDim = (s: BatchShape) => s[s.length - 1] ?? 0;
const prodKnown = (dims: Array<number | null>) => dims.reduce<number>((p, d) => p * (d ?? 1), 1);
function channelDim(args: Record<string, unknown>, s: BatchShape): number {
  return (args.dataFormat === 'channelsFirst' ? s[1] : s[s.length - 1]) ?? 0;
}
function kernelCount(args: Record<string, unknown>, rank: number): number {
  const k = args.kernelSize;
  return Array.isArray(k) ? k.reduce((p: number, x: number) => p * x, 1) : (k as number) ** rank;
}
const biasCount = (args: Record<string, unknown>, n: number) => (args.useBias === false ? 0 : n);

function rnnParams(gates: number, args: Record<string, unknown>, s: BatchShape): number {
  const units = args.units as number;
  const d = lastDim(s);
  return gates * (units * (d + units) + biasCount(args, units));
}

// ---------------------------------------------------------------------------------------------
// Layer definitions

const denseLike = {
  activation: A.act(),
  useBias: A.bool(),
  kernelInitializer: A.init(),
  biasInitializer: A.init(),
  kernelRegularizer: A.reg(),
  biasRegularizer: A.reg(),
  activityRegularizer: A.reg(),
  kernelConstraint: A.con(),
  biasConstraint: A.con(),
};

function convArgs(rank: number, withFilters: boolean, causal: boolean): Record<string, ArgSpec> {
  return {
    ...(withFilters ? { filters: A.posInt() } : {}),
    kernelSize: { convert: intTupleArg(rank) },
    strides: { convert: intTupleArg(rank) },
    padding: { convert: padding(causal) },
    dataFormat: { convert: dataFormat },
    dilationRate: { convert: intTupleArg(rank) },
    groups: A.onlyIf(isOne, '1'),
    ...denseLike,
  };
}

function pool1dArgs(): Record<string, ArgSpec> {
  return {
    poolSize: { convert: intTupleArg(1) },
    strides: { convert: intTupleArg(1, { nullable: true }) },
    padding: { convert: padding() },
    dataFormat: A.onlyIf((v) => v === 'channels_last' || v === 'channelsLast' || v === null, '"channels_last"'),
  };
}
function pool2dArgs(): Record<string, ArgSpec> {
  return {
    poolSize: { convert: intTupleArg(2) },
    strides: { convert: intTupleArg(2, { nullable: true }) },
    padding: { convert: padding() },
    dataFormat: { convert: dataFormat },
  };
}
const nullIfNullish = (args: Record<string, unknown>) => {
  if (args.strides === null) delete args.strides;
};

const rnnBase = {
  units: A.posInt(),
  activation: A.act(),
  useBias: A.bool(),
  kernelInitializer: A.init(),
  recurrentInitializer: A.init(),
  biasInitializer: A.init(),
  kernelRegularizer: A.reg(),
  recurrentRegularizer: A.reg(),
  biasRegularizer: A.reg(),
  activityRegularizer: A.onlyIf(isNull, 'null'),
  kernelConstraint: A.con(),
  recurrentConstraint: A.con(),
  biasConstraint: A.con(),
  dropout: { convert: numArg({ min: 0, max: 1 }) },
  recurrentDropout: { convert: numArg({ min: 0, max: 1 }) },
  returnSequences: A.bool(),
  returnState: A.bool(),
  goBackwards: A.bool(),
  stateful: A.bool(),
  unroll: A.bool(),
  timeMajor: A.onlyIf(isFalse, 'false'),
  inputDim: A.posInt(),
  inputLength: A.int({ min: 1, nullable: true }),
  // The seed of the dropout masks (Keras 3): tfjs draws its own; the result is the same in distribution.
  seed: A.onlyIf((v) => v === null || isInt(v), 'null or an integer'),
};
const gatedRnn = {
  ...rnnBase,
  // tfjs defaults to hard_sigmoid; Keras 2 to sigmoid.
  recurrentActivation: { convert: activationArg, kerasDefault: 'sigmoid' },
  implementation: { convert: intArg({ min: 1, max: 2 }) },
};

const RECURRENT = new Set(['LSTM', 'GRU', 'SimpleRNN']);

function reshapeCheck(args: Record<string, unknown>, s: BatchShape, argPath: (n: string) => string): void {
  const target = args.targetShape as number[];
  const dims = s.slice(1);
  if (dims.some((d) => d == null)) return;
  const total = prodKnown(dims);
  const known = target.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const ok = target.includes(-1) ? total % known === 0 : total === known;
  if (!ok) {
    fail(
      argPath('targetShape'),
      `target_shape ${describe(target)} does not fit the input shape ${describe(dims)}: ` +
        `${total} values cannot be reshaped to ${target.includes(-1) ? `a multiple of ${known}` : known}`,
    );
  }
}

function pool3dArgs(): Record<string, ArgSpec> {
  return {
    poolSize: { convert: intTupleArg(3) },
    strides: { convert: intTupleArg(3, { nullable: true }) },
    padding: { convert: padding() },
    dataFormat: { convert: dataFormat },
  };
}

/** A number or a non-empty list of numbers (Normalization's mean and variance); null for none. */
const numOrListArg: Converter = (v, name, path) => {
  if (v === null) return null;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x))) return [...v];
  fail(path, `${name} must be a number, a list of numbers, or null (got ${describe(v)})`);
};

/** The cells an RNN layer takes: Keras's SimpleRNNCell, GRUCell and LSTMCell. */
const CELL_DEFS: Record<string, { gates: number; args: Record<string, ArgSpec>; make: (a: Record<string, unknown>) => tf.layers.RNNCell }> = {
  simplernncell: {
    gates: 1,
    args: (() => { const { returnSequences: _a, returnState: _b, goBackwards: _c, stateful: _d, unroll: _e, timeMajor: _f, inputDim: _g, inputLength: _h, activityRegularizer: _i, ...r } = rnnBase; return r; })(),
    make: (a) => tf.layers.simpleRNNCell(a as never),
  },
  grucell: {
    gates: 3,
    args: (() => { const { returnSequences: _a, returnState: _b, goBackwards: _c, stateful: _d, unroll: _e, timeMajor: _f, inputDim: _g, inputLength: _h, activityRegularizer: _i, ...r } = gatedRnn; return { ...r, resetAfter: { convert: boolArg, kerasDefault: true } }; })(),
    make: (a) => (a.resetAfter ? (new ResetAfterGRUCell(a) as unknown as tf.layers.RNNCell) : tf.layers.gruCell(a as never)),
  },
  lstmcell: {
    gates: 4,
    args: (() => { const { returnSequences: _a, returnState: _b, goBackwards: _c, stateful: _d, unroll: _e, timeMajor: _f, inputDim: _g, inputLength: _h, activityRegularizer: _i, ...r } = gatedRnn; return { ...r, unitForgetBias: { convert: boolArg, kerasDefault: true } }; })(),
    make: (a) => tf.layers.lstmCell(a as never),
  },
};

function readCells(v: unknown, name: string, path: string): { cells: tf.layers.RNNCell[]; specs: Array<{ gates: number; args: Record<string, unknown> }> } {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) fail(path, `${name} must be a cell or a non-empty list of cells`);
  const cells: tf.layers.RNNCell[] = [];
  const specs: Array<{ gates: number; args: Record<string, unknown> }> = [];
  list.forEach((c, i) => {
    const cp = Array.isArray(v) ? `${path}[${i}]` : path;
    const obj = namedObject(c, name, cp);
    const def = obj && CELL_DEFS[normKey(obj.kind)];
    if (!obj || !def) fail(cp, `${name} must be a SimpleRNNCell, GRUCell or LSTMCell, like {"type": "LSTMCell", "units": 8} (got ${describe(c)})`);
    const { args } = readLayerArgs({ className: obj.kind, args: def.args, required: ['units'], create: () => { throw new Error('unused'); } }, obj.params, obj.paramsPath, new Set(['type', 'name', 'trainable', 'dtype']), {});
    specs.push({ gates: def.gates, args });
    cells.push(made(cp, name, () => def.make(args)));
  });
  return { cells, specs };
}

const L = tf.layers;

const DEFS: LayerDef[] = [
  {
    className: 'Dense',
    args: { units: A.posInt(), ...denseLike, inputDim: A.posInt() },
    required: ['units'],
    estimateParams: (a, s) => lastDim(s) * (a.units as number) + biasCount(a, a.units as number),
    create: (a) => L.dense(a as never),
  },
  { className: 'Activation', args: { activation: A.act() }, required: ['activation'], create: (a) => L.activation(a as never) },
  {
    className: 'Dropout',
    args: { rate: A.rate(), noiseShape: { convert: (v, n, p) => (v === null ? undefined : intListArg({ min: 1, allowNull: true })(v, n, p)) }, seed: A.seed() },
    required: ['rate'],
    create: (a) => L.dropout(a as never),
  },
  { className: 'SpatialDropout1D', args: { rate: A.rate(), seed: A.seed() }, required: ['rate'], create: (a) => L.spatialDropout1d(a as never) },
  { className: 'GaussianNoise', args: { stddev: A.num({ min: 0 }), seed: A.onlyIf(isNull, 'null') }, required: ['stddev'], create: (a) => L.gaussianNoise(a as never) },
  { className: 'GaussianDropout', args: { rate: A.rate(), seed: A.onlyIf(isNull, 'null') }, required: ['rate'], create: (a) => L.gaussianDropout(a as never) },
  {
    className: 'AlphaDropout',
    args: { rate: A.rate(), noiseShape: { convert: (v, n, p) => (v === null ? undefined : intListArg({ min: 1, allowNull: true })(v, n, p)) }, seed: A.seed() },
    required: ['rate'],
    create: (a) => L.alphaDropout(a as never),
  },
  // Keras's Flatten, which also takes a 2-D input (tfjs's needs rank >= 3).
  { className: 'Flatten', args: { dataFormat: { convert: dataFormat } }, create: (a) => new KerasFlatten(a) as unknown as tf.layers.Layer },
  {
    className: 'Reshape',
    args: { targetShape: { convert: targetShapeArg } },
    required: ['targetShape'],
    checkInput: reshapeCheck,
    // tfjs never works out the -1 when it computes the output shape (it sees the batch dim as
    // unknown), so the next layer would get a None dimension; Keras resolves it.
    beforeCall: (layer, a, s) => {
      const target = a.targetShape as number[];
      const dims = s.slice(1);
      if (!target.includes(-1) || dims.some((d) => d == null)) return;
      const known = target.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
      const resolved = target.map((d) => (d === -1 ? prodKnown(dims) / known : d));
      (layer as unknown as { targetShape: number[] }).targetShape = resolved;
    },
    // tfjs's Reshape writes null over the -1 in the array it is given: give it a copy.
    create: (a) => L.reshape({ ...a, targetShape: [...(a.targetShape as number[])] } as never),
  },
  {
    className: 'Permute',
    args: { dims: { convert: intListArg({ min: 1 }) } },
    required: ['dims'],
    validate: (a, _p, argPath) => {
      const dims = a.dims as number[];
      const sorted = [...dims].sort((x, y) => x - y);
      if (!sorted.every((d, i) => d === i + 1)) fail(argPath('dims'), `dims must be a permutation of 1..${dims.length} (got ${describe(dims)})`);
    },
    create: (a) => L.permute(a as never),
  },
  { className: 'RepeatVector', args: { n: A.posInt() }, required: ['n'], create: (a) => L.repeatVector(a as never) },
  { className: 'Masking', args: { maskValue: A.num() }, create: (a) => L.masking(a as never) },
  {
    className: 'ReLU',
    args: { maxValue: A.num({ min: 0, nullable: true }), negativeSlope: A.num({ min: 0 }), threshold: A.num({ min: 0 }) },
    // The course writes layers.ReLU(alpha=0.01).
    argAliases: { alpha: 'negativeSlope' },
    create: (a) => new KerasReLU(a as never),
  },
  {
    className: 'LeakyReLU',
    args: { alpha: { convert: numArg({ min: 0 }), kerasDefault: 0.3 } },
    argAliases: { negativeSlope: 'alpha' },
    create: (a) => L.leakyReLU(a as never),
  },
  {
    className: 'PReLU',
    args: {
      alphaInitializer: A.init(),
      alphaRegularizer: A.reg(),
      alphaConstraint: A.con(),
      sharedAxes: { convert: (v, n, p) => (v === null ? undefined : axisArg(true)(v, n, p)) },
    },
    estimateParams: (a, s) => {
      const shared = new Set(([] as number[]).concat((a.sharedAxes as number | number[] | undefined) ?? []));
      return s.slice(1).reduce<number>((p, d, i) => p * (shared.has(i + 1) ? 1 : (d ?? 1)), 1);
    },
    create: (a) => L.prelu(a as never),
  },
  { className: 'ELU', args: { alpha: A.num() }, create: (a) => L.elu(a as never) },
  { className: 'ThresholdedReLU', args: { theta: A.num({ min: 0 }) }, create: (a) => L.thresholdedReLU(a as never) },
  { className: 'Softmax', args: { axis: { convert: axisArg(true) } }, create: (a) => L.softmax(a as never) },
  { className: 'Concatenate', args: { axis: { convert: axisArg(false) } }, create: (a) => L.concatenate(a as never) },
  { className: 'Add', args: {}, create: (a) => L.add(a as never) },
  { className: 'Subtract', args: {}, create: (a) => new Subtract(a as never) },
  { className: 'Multiply', args: {}, create: (a) => L.multiply(a as never) },
  { className: 'Average', args: {}, create: (a) => L.average(a as never) },
  { className: 'Maximum', args: {}, create: (a) => L.maximum(a as never) },
  { className: 'Minimum', args: {}, create: (a) => L.minimum(a as never) },
  {
    className: 'Dot',
    args: {
      axes: {
        convert: (v, name, path) => {
          if (isInt(v)) return v;
          if (Array.isArray(v) && v.length === 2 && v.every(isInt)) return [...v];
          fail(path, `${name} must be an integer or a list of 2 integers (got ${describe(v)})`);
        },
      },
      normalize: A.bool(),
    },
    required: ['axes'],
    create: (a) => L.dot(a as never),
  },
  {
    className: 'Conv1D',
    aliases: ['Convolution1D'],
    args: convArgs(1, true, true),
    required: ['filters', 'kernelSize'],
    estimateParams: (a, s) => kernelCount(a, 1) * channelDim(a, s) * (a.filters as number) + biasCount(a, a.filters as number),
    create: (a) => L.conv1d(a as never),
  },
  {
    className: 'Conv2D',
    aliases: ['Convolution2D'],
    args: convArgs(2, true, false),
    required: ['filters', 'kernelSize'],
    estimateParams: (a, s) => kernelCount(a, 2) * channelDim(a, s) * (a.filters as number) + biasCount(a, a.filters as number),
    create: (a) => L.conv2d(a as never),
  },
  {
    className: 'Conv2DTranspose',
    aliases: ['Convolution2DTranspose', 'Deconvolution2D'],
    args: { ...convArgs(2, true, false), dilationRate: A.onlyIf(isOne, '1'), outputPadding: A.onlyIf(isNull, 'null') },
    required: ['filters', 'kernelSize'],
    estimateParams: (a, s) => kernelCount(a, 2) * channelDim(a, s) * (a.filters as number) + biasCount(a, a.filters as number),
    create: (a) => L.conv2dTranspose(a as never),
  },
  {
    className: 'SeparableConv2D',
    aliases: ['SeparableConvolution2D'],
    args: (() => {
      const { kernelInitializer: _k, kernelRegularizer: _r, kernelConstraint: _c, ...rest } = convArgs(2, true, false);
      return {
        ...rest,
        depthMultiplier: A.posInt(),
        depthwiseInitializer: A.init(),
        pointwiseInitializer: A.init(),
        depthwiseRegularizer: A.reg(),
        pointwiseRegularizer: A.reg(),
        depthwiseConstraint: A.con(),
        pointwiseConstraint: A.con(),
      };
    })(),
    required: ['filters', 'kernelSize'],
    estimateParams: (a, s) => {
      const c = channelDim(a, s);
      const dm = (a.depthMultiplier as number) ?? 1;
      return kernelCount(a, 2) * c * dm + c * dm * (a.filters as number) + biasCount(a, a.filters as number);
    },
    create: (a) => L.separableConv2d(a as never),
  },
  {
    className: 'DepthwiseConv2D',
    args: (() => {
      const { kernelInitializer: _k, kernelRegularizer: _r, kernelConstraint: _c, ...rest } = convArgs(2, false, false);
      return { ...rest, depthMultiplier: A.posInt(), depthwiseInitializer: A.init(), depthwiseRegularizer: A.reg(), depthwiseConstraint: A.con() };
    })(),
    required: ['kernelSize'],
    estimateParams: (a, s) => {
      const c = channelDim(a, s);
      const dm = (a.depthMultiplier as number) ?? 1;
      return kernelCount(a, 2) * c * dm + biasCount(a, c * dm);
    },
    create: (a) => L.depthwiseConv2d(a as never),
  },
  { className: 'MaxPooling1D', aliases: ['MaxPool1D'], args: pool1dArgs(), validate: nullIfNullish, create: (a) => L.maxPooling1d(a as never) },
  { className: 'AveragePooling1D', aliases: ['AvgPool1D'], args: pool1dArgs(), validate: nullIfNullish, create: (a) => L.averagePooling1d(a as never) },
  { className: 'MaxPooling2D', aliases: ['MaxPool2D'], args: pool2dArgs(), validate: nullIfNullish, create: (a) => L.maxPooling2d(a as never) },
  { className: 'AveragePooling2D', aliases: ['AvgPool2D'], args: pool2dArgs(), validate: nullIfNullish, create: (a) => L.averagePooling2d(a as never) },
  {
    className: 'GlobalAveragePooling1D',
    aliases: ['GlobalAvgPool1D'],
    args: { dataFormat: A.onlyIf((v) => v === 'channels_last' || v === 'channelsLast' || v === null, '"channels_last"'), keepdims: A.onlyIf(isFalse, 'false') },
    create: (a) => L.globalAveragePooling1d(a as never),
  },
  {
    className: 'GlobalMaxPooling1D',
    aliases: ['GlobalMaxPool1D'],
    args: { dataFormat: A.onlyIf((v) => v === 'channels_last' || v === 'channelsLast' || v === null, '"channels_last"'), keepdims: A.onlyIf(isFalse, 'false') },
    create: (a) => L.globalMaxPooling1d(a as never),
  },
  {
    className: 'GlobalAveragePooling2D',
    aliases: ['GlobalAvgPool2D'],
    args: { dataFormat: { convert: dataFormat }, keepdims: A.onlyIf(isFalse, 'false') },
    create: (a) => L.globalAveragePooling2d(a as never),
  },
  {
    className: 'GlobalMaxPooling2D',
    aliases: ['GlobalMaxPool2D'],
    args: { dataFormat: { convert: dataFormat }, keepdims: A.onlyIf(isFalse, 'false') },
    create: (a) => L.globalMaxPooling2d(a as never),
  },
  {
    className: 'BatchNormalization',
    args: {
      axis: { convert: axisArg(false) },
      momentum: A.num({ min: 0, max: 1 }),
      epsilon: A.num({ min: 0, minOpen: true }),
      center: A.bool(),
      scale: A.bool(),
      betaInitializer: A.init(),
      gammaInitializer: A.init(),
      movingMeanInitializer: A.init(),
      movingVarianceInitializer: A.init(),
      betaRegularizer: A.reg(),
      gammaRegularizer: A.reg(),
      betaConstraint: A.con(),
      gammaConstraint: A.con(),
      renorm: A.onlyIf(isFalse, 'false'),
      renormClipping: A.onlyIf(isNull, 'null'),
      renormMomentum: A.onlyIf((v) => typeof v === 'number', 'any number (unused without renorm)'),
      fused: A.onlyIf((v) => v === null || typeof v === 'boolean', 'true, false or null (an implementation choice)'),
      virtualBatchSize: A.onlyIf(isNull, 'null'),
      adjustment: A.onlyIf(isNull, 'null'),
      synchronized: A.onlyIf(isFalse, 'false'),
    },
    estimateParams: (a, s) => {
      const axis = (a.axis as number | undefined) ?? -1;
      const c = s[axis < 0 ? s.length + axis : axis] ?? 0;
      return c * (2 + (a.center === false ? 0 : 1) + (a.scale === false ? 0 : 1));
    },
    create: (a) => L.batchNormalization(a as never),
  },
  {
    className: 'LayerNormalization',
    args: {
      axis: { convert: axisArg(true) },
      epsilon: A.num({ min: 0, minOpen: true }),
      center: A.bool(),
      scale: A.bool(),
      betaInitializer: A.init(),
      gammaInitializer: A.init(),
      betaRegularizer: A.reg(),
      gammaRegularizer: A.reg(),
      betaConstraint: A.onlyIf(isNull, 'null'),
      gammaConstraint: A.onlyIf(isNull, 'null'),
    },
    create: (a) => L.layerNormalization(a as never),
  },
  {
    className: 'Embedding',
    args: {
      inputDim: A.posInt(),
      outputDim: A.posInt(),
      embeddingsInitializer: A.init(),
      embeddingsRegularizer: A.reg(),
      activityRegularizer: A.reg(),
      embeddingsConstraint: A.con(),
      maskZero: A.bool(),
      inputLength: { convert: (v, n, p) => (v === null ? undefined : intArg({ min: 1 })(v, n, p)) },
      sparse: A.onlyIf(isFalse, 'false'),
    },
    required: ['inputDim', 'outputDim'],
    estimateParams: (a) => (a.inputDim as number) * (a.outputDim as number),
    create: (a) => L.embedding(a as never),
  },
  {
    className: 'LSTM',
    // tfjs defaults unit_forget_bias to false; Keras to true.
    args: { ...gatedRnn, unitForgetBias: { convert: boolArg, kerasDefault: true } },
    required: ['units'],
    estimateParams: (a, s) => rnnParams(4, a, s),
    create: (a) => L.lstm(a as never),
  },
  {
    className: 'GRU',
    // Keras's default is reset_after=true (TF2 Keras and Keras 3): KerasGRU implements both.
    args: { ...gatedRnn, resetAfter: { convert: boolArg, kerasDefault: true } },
    required: ['units'],
    estimateParams: (a, s) => rnnParams(3, a, s) + (a.resetAfter && a.useBias !== false ? 3 * (a.units as number) : 0),
    create: (a) => new KerasGRU(a) as unknown as tf.layers.Layer,
  },
  {
    className: 'SimpleRNN',
    args: { ...rnnBase },
    required: ['units'],
    estimateParams: (a, s) => rnnParams(1, a, s),
    create: (a) => L.simpleRNN(a as never),
  },
  {
    className: 'Bidirectional',
    wrapsLayer: true,
    args: {
      mergeMode: { convert: enumArg({ concat: 'concat', sum: 'sum', mul: 'mul', ave: 'ave' }, true) },
      backwardLayer: A.onlyIf(isNull, 'null'),
    },
    create: (a) => L.bidirectional(a as never),
  },
  { className: 'TimeDistributed', wrapsLayer: true, args: {}, create: (a) => L.timeDistributed(a as never) },
  {
    className: 'ZeroPadding2D',
    args: { padding: { convert: pairs2dArg }, dataFormat: { convert: dataFormat } },
    create: (a) => L.zeroPadding2d(a as never),
  },
  {
    className: 'Cropping2D',
    args: { cropping: { convert: pairs2dArg, kerasDefault: [[0, 0], [0, 0]] }, dataFormat: { convert: dataFormat } },
    create: (a) => L.cropping2D(a as never),
  },
  {
    className: 'UpSampling2D',
    args: {
      size: { convert: intTupleArg(2, { alwaysList: true }) },
      dataFormat: { convert: dataFormat },
      interpolation: { convert: enumArg({ nearest: 'nearest', bilinear: 'bilinear' }) },
    },
    create: (a) => L.upSampling2d(a as never),
  },
  { className: 'Rescaling', args: { scale: A.num(), offset: A.num() }, required: ['scale'], create: (a) => L.rescaling(a as never) },
  {
    className: 'Normalization',
    args: {
      axis: { convert: (v, n, p) => (v === null ? null : axisArg(true)(v, n, p)) },
      mean: { convert: numOrListArg },
      variance: { convert: numOrListArg },
      invert: A.bool(),
      adapt: A.bool(),
    },
    validate: (a, _p, argPath) => {
      if ((a.mean == null) !== (a.variance == null)) fail(argPath(a.mean == null ? 'variance' : 'mean'), 'give both mean and variance, or neither');
      if (a.adapt && a.mean != null) fail(argPath('adapt'), 'adapt takes mean and variance from the training data: give adapt or mean/variance, not both');
    },
    estimateParams: (a, s) => {
      if (a.mean != null) return 0;
      const axes = a.axis === null ? [] : ([] as number[]).concat((a.axis as number | number[] | undefined) ?? -1);
      const d = axes.reduce((p, x) => p * (s[x < 0 ? s.length + x : x] ?? 1), 1);
      return 2 * d + 1;
    },
    create: (a) => new Normalization(a as never),
  },
  {
    className: 'MultiHeadAttention',
    args: {
      numHeads: A.posInt(),
      keyDim: A.posInt(),
      valueDim: { convert: intArg({ min: 1, nullable: true }) },
      dropout: { convert: numArg({ min: 0, max: 1, maxOpen: true }) },
      useBias: A.bool(),
      outputShape: {
        convert: (v, name, path) => {
          if (v === null) return null;
          if (isInt(v) && v > 0) return v;
          if (Array.isArray(v) && v.length === 1 && isInt(v[0]) && v[0] > 0) return v[0];
          fail(path, `${name} must be a positive integer, a list of one, or null (got ${describe(v)})`);
        },
      },
      attentionAxes: A.onlyIf((v) => v === null || (Array.isArray(v) && v.length === 1 && v[0] === 1), 'null (attention over the time axis)'),
      useCausalMask: A.bool(),
      kernelInitializer: A.init(),
      biasInitializer: A.init(),
      kernelRegularizer: A.reg(),
      biasRegularizer: A.reg(),
      activityRegularizer: A.onlyIf(isNull, 'null'),
      kernelConstraint: A.con(),
      biasConstraint: A.con(),
      seed: A.onlyIf((v) => v === null || isInt(v), 'null or an integer'),
      flashAttention: A.onlyIf((v) => v === null || v === false, 'null or false'),
      // Keras 2 records the shapes it was built with; the call's inputs say the same.
      queryShape: A.onlyIf(() => true, 'any'),
      keyShape: A.onlyIf(() => true, 'any'),
      valueShape: A.onlyIf(() => true, 'any'),
    },
    required: ['numHeads', 'keyDim'],
    estimateParams: (a, s) => {
      const d = lastDim(s);
      const h = a.numHeads as number;
      const k = a.keyDim as number;
      const v = (a.valueDim as number | null | undefined) ?? k;
      const out = (a.outputShape as number | null | undefined) ?? d;
      const b = a.useBias === false ? 0 : 1;
      return 2 * (d * h * k + b * h * k) + d * h * v + b * h * v + h * v * out + b * out;
    },
    create: (a) => new MultiHeadAttention(a as never),
  },
  {
    className: 'Conv3D',
    aliases: ['Convolution3D'],
    args: convArgs(3, true, false),
    required: ['filters', 'kernelSize'],
    estimateParams: (a, s) => kernelCount(a, 3) * channelDim(a, s) * (a.filters as number) + biasCount(a, a.filters as number),
    create: (a) => L.conv3d(a as never),
  },
  {
    className: 'Conv3DTranspose',
    aliases: ['Convolution3DTranspose'],
    args: { ...convArgs(3, true, false), dilationRate: A.onlyIf(isOne, '1'), outputPadding: A.onlyIf(isNull, 'null') },
    required: ['filters', 'kernelSize'],
    estimateParams: (a, s) => kernelCount(a, 3) * channelDim(a, s) * (a.filters as number) + biasCount(a, a.filters as number),
    create: (a) => L.conv3dTranspose(a as never),
  },
  { className: 'MaxPooling3D', aliases: ['MaxPool3D'], args: pool3dArgs(), validate: nullIfNullish, create: (a) => L.maxPooling3d(a as never) },
  { className: 'AveragePooling3D', aliases: ['AvgPool3D'], args: pool3dArgs(), validate: nullIfNullish, create: (a) => L.averagePooling3d(a as never) },
  {
    className: 'ConvLSTM2D',
    args: {
      ...gatedRnn,
      units: A.onlyIf(() => false, 'nothing (ConvLSTM2D takes filters)'),
      filters: A.posInt(),
      kernelSize: { convert: intTupleArg(2) },
      strides: { convert: intTupleArg(2) },
      padding: { convert: padding() },
      dataFormat: { convert: dataFormat },
      dilationRate: { convert: intTupleArg(2) },
      unitForgetBias: { convert: boolArg, kerasDefault: true },
    },
    required: ['filters', 'kernelSize'],
    estimateParams: (a) => {
      const f = a.filters as number;
      const k = kernelCount(a, 2);
      return 4 * (k * f * f + biasCount(a, f)); // plus the input kernel, known once built
    },
    create: (a) => L.convLstm2d(a as never),
  },
  {
    className: 'CategoryEncoding',
    args: {
      numTokens: A.posInt(),
      outputMode: { convert: enumArg({ one_hot: 'oneHot', multi_hot: 'multiHot', count: 'count', oneHot: 'oneHot', multiHot: 'multiHot' }) },
      sparse: A.onlyIf(isFalse, 'false'),
    },
    required: ['numTokens'],
    create: (a) => L.categoryEncoding(a as never),
  },
  { className: 'CenterCrop', args: { height: A.posInt(), width: A.posInt() }, required: ['height', 'width'], create: (a) => L.centerCrop(a as never) },
  {
    className: 'Resizing',
    args: {
      height: A.posInt(),
      width: A.posInt(),
      interpolation: { convert: enumArg({ bilinear: 'bilinear', nearest: 'nearest' }) },
      cropToAspectRatio: A.bool(),
      padToAspectRatio: A.onlyIf(isFalse, 'false'),
      fillMode: A.onlyIf(() => true, 'any (used only with pad_to_aspect_ratio)'),
      fillValue: A.onlyIf(() => true, 'any (used only with pad_to_aspect_ratio)'),
      antialias: A.onlyIf(isFalse, 'false'),
    },
    required: ['height', 'width'],
    create: (a) => L.resizing(a as never),
  },
  {
    className: 'RandomWidth',
    args: {
      factor: {
        convert: (v, name, path) => {
          if (typeof v === 'number' && v >= 0) return v;
          if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [...v];
          fail(path, `${name} must be a number >= 0 or a list of 2 numbers (got ${describe(v)})`);
        },
      },
      interpolation: { convert: enumArg({ bilinear: 'bilinear', nearest: 'nearest' }) },
      seed: A.seed(),
    },
    required: ['factor'],
    create: (a) => L.randomWidth(a as never),
  },
  {
    // A generic recurrent layer around a cell (or a list of cells: StackedRNNCells).
    className: 'RNN',
    args: {
      cell: { convert: (v, name, path) => readCells(v, name, path) },
      returnSequences: A.bool(),
      returnState: A.bool(),
      goBackwards: A.bool(),
      stateful: A.bool(),
      unroll: A.bool(),
      timeMajor: A.onlyIf(isFalse, 'false'),
      zeroOutputForMask: A.onlyIf(isFalse, 'false'),
    },
    required: ['cell'],
    estimateParams: (a, s) => {
      let d = lastDim(s);
      let n = 0;
      for (const c of (a.cellSpecs as Array<{ gates: number; args: Record<string, unknown> }>)) {
        n += rnnParams(c.gates, c.args, [null, d]) + (c.gates === 3 && c.args.resetAfter ? 3 * (c.args.units as number) : 0);
        d = c.args.units as number;
      }
      return n;
    },
    validate: (a) => {
      const cells = a.cell as { cells: tf.layers.RNNCell[]; specs: unknown[] };
      a.cellSpecs = cells.specs;
      a.cell = cells.cells.length === 1 ? cells.cells[0] : L.stackedRNNCells({ cells: cells.cells });
    },
    create: (a) => {
      const { cellSpecs: _s, ...rest } = a;
      return L.rnn(rest as never);
    },
  },
  {
    // Declared weights and a call expression (src/expressions/expression-layer.ts).
    className: 'Custom',
    args: { config: { convert: (v) => v }, weights: { convert: (v) => v }, call: { convert: (v) => v } },
    required: ['call'],
    validate: (a, path) => {
      a.spec = readCustomLayerSpec({ config: a.config, weights: a.weights, call: a.call }, path);
      delete a.config;
      delete a.weights;
      delete a.call;
    },
    checkInput: (a, shape, argPath) => {
      const spec = a.spec as CustomLayerSpec;
      const uses = spec.weights.find((w) => w.shape.includes('input_dim'));
      if (uses && shape[shape.length - 1] == null) {
        fail(`${argPath('weights')}.${uses.name}.shape`, `weight "${uses.name}" uses input_dim, but the input's last axis has no fixed size`);
      }
    },
    estimateParams: (a, shape) => customLayerParams(a.spec as CustomLayerSpec, shape[shape.length - 1] ?? null),
    create: (a) => new ExpressionLayer(a as never),
  },
];

/** Arguments every layer takes (Keras's base Layer kwargs). */
export const COMMON_ARGS: Record<string, ArgSpec> = {
  name: { convert: (v) => v }, // validated by the builder (uniqueness, characters)
  trainable: A.bool(),
  dtype: { convert: dtypeArg },
  inputShape: { convert: shapeArg },
  batchInputShape: { convert: batchShapeArg },
  batchSize: A.posInt(),
};

/** `{"type": "InputLayer", ...}` as the first layer of a sequential model. */
export const INPUT_LAYER_ARGS: Record<string, ArgSpec> = {
  name: { convert: (v) => v },
  inputShape: { convert: shapeArg },
  batchInputShape: { convert: batchShapeArg },
  batchSize: A.posInt(),
  dtype: { convert: (v, n, p) => inputDtype(v, n, p) },
  sparse: A.onlyIf((v) => v === false || v === null, 'false'),
  ragged: A.onlyIf((v) => v === false || v === null, 'false'),
};
export const INPUT_LAYER_ALIASES: Record<string, string> = { shape: 'inputShape', batchShape: 'batchInputShape' };

/** Input dtypes: Keras names -> the tfjs dtype that holds them. */
export function inputDtype(v: unknown, name: string, path: string): 'float32' | 'int32' {
  const map: Record<string, 'float32' | 'int32'> = {
    float32: 'float32', float16: 'float32', float64: 'float32', bfloat16: 'float32',
    int32: 'int32', int64: 'int32', int16: 'int32', int8: 'int32', uint8: 'int32', uint16: 'int32',
  };
  if (typeof v === 'string' && map[v]) return map[v];
  fail(path, `${name} must be "float32" or "int32" (got ${describe(v)})`);
}

const BY_KEY = new Map<string, LayerDef>();
for (const def of DEFS) {
  for (const n of [def.className, ...(def.aliases ?? [])]) BY_KEY.set(normKey(n), def);
}

/** Every layer definition, in registry order (for docs/layers.md). */
export function layerDefs(): readonly LayerDef[] {
  return DEFS;
}

/** Argument specs for a definition, the common ones included (for docs). */
export function argSpecsOf(def: LayerDef): Record<string, ArgSpec> {
  return { ...COMMON_ARGS, ...def.args };
}

/** Names of the cells the RNN layer takes. */
export const RNN_CELL_TYPES = ['SimpleRNNCell', 'GRUCell', 'LSTMCell'];

/** Keras class names of every layer type the native spec accepts (plus InputLayer and nested Sequential). */
export const SUPPORTED_LAYER_TYPES: string[] = [...DEFS.map((d) => d.className), 'InputLayer', 'Sequential'].sort();

/** The definition for a `type` (case-insensitive, underscores ignored: "Dense", "dense", "max_pooling2d"). */
export function findLayerDef(type: string): LayerDef | undefined {
  return BY_KEY.get(normKey(type));
}

/** Whether the type names the RNN layers Bidirectional can wrap. */
export function isRecurrentDef(def: LayerDef): boolean {
  return RECURRENT.has(def.className);
}

/** Every camelCase argument name known, to turn tfjs messages into snake_case ones. */
export const KNOWN_CAMEL_ARGS: Set<string> = new Set(
  [...DEFS.flatMap((d) => Object.keys(d.args)), ...Object.keys(COMMON_ARGS)].filter((k) => /[A-Z]/.test(k)),
);

/**
 * Validates one layer entry's arguments: unknown ones, duplicates (snake and camel spellings
 * of one argument), each value, required ones; applies Keras defaults. Returns tfjs args
 * (without `layer` for wrappers) and, for error paths, the key the user wrote for each argument.
 */
export function readLayerArgs(
  def: LayerDef,
  entry: Record<string, unknown>,
  path: string,
  skipKeys: Set<string>,
  extraArgs: Record<string, ArgSpec> = COMMON_ARGS,
  extraAliases: Record<string, string> = {},
): { args: Record<string, unknown>; keyOf: (camel: string) => string } {
  const specs: Record<string, ArgSpec> = { ...extraArgs, ...def.args };
  const aliases: Record<string, string> = { ...extraAliases, ...(def.argAliases ?? {}) };
  const written = new Map<string, string>(); // camel -> key as written
  const args: Record<string, unknown> = {};
  const keyOf = (camel: string) => written.get(camel) ?? camelToSnake(camel);
  const argPath = (camel: string) => `${path}.${keyOf(camel)}`;

  for (const [key, value] of Object.entries(entry)) {
    if (skipKeys.has(key)) continue;
    let camel = snakeToCamel(key);
    if (!specs[camel] && aliases[camel]) camel = aliases[camel];
    const spec = specs[camel];
    if (!spec) {
      const accepted = Object.keys(specs).map(camelToSnake).sort();
      const extra = [...skipKeys].filter((k) => k !== 'type');
      fail(
        `${path}.${key}`,
        `unknown argument "${key}" for ${def.className}; accepted: ${[...extra, ...accepted].join(', ')}`,
      );
    }
    if (written.has(camel)) {
      fail(`${path}.${key}`, `"${key}" repeats "${written.get(camel)}": give one of them`);
    }
    written.set(camel, key);
    if (spec.onlyIf) {
      if (!spec.onlyIf.test(value)) {
        fail(`${path}.${key}`, `${key}=${describe(value)} is not supported here (TensorFlow.js); accepted: ${spec.onlyIf.accepted}`);
      }
      continue; // same result as leaving it out
    }
    const converted = spec.convert(value, key, `${path}.${key}`);
    if (converted !== undefined) args[camel] = converted;
  }
  for (const req of def.required ?? []) {
    if (!written.has(req)) fail(`${path}.${camelToSnake(req)}`, `${camelToSnake(req)} is required for ${def.className}`);
  }
  for (const [camel, spec] of Object.entries(specs)) {
    if (spec.kerasDefault !== undefined && !written.has(camel)) {
      args[camel] = spec.convert(spec.kerasDefault, camelToSnake(camel), argPath(camel));
    }
  }
  def.validate?.(args, path, argPath);
  return { args, keyOf };
}
