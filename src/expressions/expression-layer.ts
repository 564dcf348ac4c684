/**
 * The Custom layer: weights declared as data and a `call` expression, the declarative form of
 * a Keras Layer subclass with build() and call():
 *
 *   {"type": "Custom", "name": "bias", "config": {"units": 64},
 *    "weights": {"bias": {"shape": ["units"], "initializer": "zeros", "trainable": true}},
 *    "call": "inputs + bias"}
 *
 * It serialises with the model ({config, weights, call} as written, kept as hex text that
 * tfjs's renaming of config keys and strings leaves alone), so a saved model loads in a
 * worker or the tensor thread with the same layer.
 */
import * as tf from '@tensorflow/tfjs';
import { SpecError } from '../errors.ts';
import { readInitializer, readRegularizer } from '../model-spec/layer-registry.ts';
import { asFloatTensor, compileExpression, evaluate, isReservedName } from './evaluate.ts';
import type { Value } from './functions.ts';
import { ExpressionError, expressionSpecError, type Node } from './parser.ts';
import { fromSafeText, toSafeText } from './tfjs-safe-text.ts';

/** Limits on one Custom layer's declarations. */
export const CUSTOM_LAYER_LIMITS = { maxConfigKeys: 32, maxWeights: 16, maxWeightRank: 6, maxWeightDim: 1 << 24 };

/** Names the call expression always has. */
const BUILTIN_NAMES = ['inputs', 'input_dim'];
const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

type Json = Record<string, unknown>;
type ShapeDim = number | string;

interface WeightDecl {
  name: string;
  shape: ShapeDim[];
  /** As written (validated), for getConfig. */
  initializer: unknown;
  regularizer: unknown;
  trainable: boolean;
}

/** A Custom layer's declarations, validated. */
export interface CustomLayerSpec {
  config: Record<string, number | boolean>;
  weights: WeightDecl[];
  call: string;
  ast: Node;
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const describe = (v: unknown) => JSON.stringify(v) ?? String(v);

function fail(path: string, message: string): never {
  throw new SpecError(path, message);
}

function checkName(name: string, path: string, what: string): void {
  if (!IDENT_RE.test(name)) fail(path, `${what} "${name}" must be a name of letters, digits and "_" (not starting with a digit)`);
  if (BUILTIN_NAMES.includes(name) || isReservedName(name)) fail(path, `${what} "${name}" is taken by the expression language (${BUILTIN_NAMES.join(', ')}, function names, true/false/None, dtypes); choose another name`);
}

/** Validates {config, weights, call}; throws SpecError (EXPRESSION_INVALID for the call) at `path`. */
export function readCustomLayerSpec(raw: { config?: unknown; weights?: unknown; call?: unknown }, path: string): CustomLayerSpec {
  const config: Record<string, number | boolean> = {};
  if (raw.config !== undefined) {
    if (!isObject(raw.config)) fail(`${path}.config`, `config must be an object of numbers, like {"units": 64} (got ${describe(raw.config)})`);
    const entries = Object.entries(raw.config);
    if (entries.length > CUSTOM_LAYER_LIMITS.maxConfigKeys) fail(`${path}.config`, `config has ${entries.length} keys, over the limit of ${CUSTOM_LAYER_LIMITS.maxConfigKeys}`);
    for (const [key, v] of entries) {
      checkName(key, `${path}.config.${key}`, 'config key');
      if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) config[key] = v;
      else fail(`${path}.config.${key}`, `config values must be numbers or booleans (got ${describe(v)})`);
    }
  }
  const weights: WeightDecl[] = [];
  if (raw.weights !== undefined) {
    if (!isObject(raw.weights)) fail(`${path}.weights`, `weights must be an object like {"bias": {"shape": ["units"], "initializer": "zeros"}} (got ${describe(raw.weights)})`);
    const entries = Object.entries(raw.weights);
    if (entries.length > CUSTOM_LAYER_LIMITS.maxWeights) fail(`${path}.weights`, `a Custom layer may declare at most ${CUSTOM_LAYER_LIMITS.maxWeights} weights, got ${entries.length}`);
    for (const [name, decl] of entries) {
      const wPath = `${path}.weights.${name}`;
      checkName(name, wPath, 'weight name');
      if (name in config) fail(wPath, `"${name}" is both a config key and a weight; rename one`);
      if (!isObject(decl)) fail(wPath, `a weight must be an object like {"shape": ["units"], "initializer": "zeros", "trainable": true}`);
      for (const key of Object.keys(decl)) {
        if (!['shape', 'initializer', 'regularizer', 'trainable'].includes(key)) fail(`${wPath}.${key}`, `unknown key "${key}" for a weight; accepted: shape, initializer, regularizer, trainable`);
      }
      weights.push(readWeight(name, decl, wPath, config));
    }
  }
  let ast: Node;
  try {
    ast = compileExpression(raw.call, new Set([...BUILTIN_NAMES, ...Object.keys(config), ...weights.map((w) => w.name)]));
  } catch (err) {
    if (err instanceof ExpressionError) {
      throw expressionSpecError(err, `${path}.call`, `call: ${err.message}`);
    }
    throw err;
  }
  return { config, weights, call: raw.call as string, ast };
}

function readWeight(name: string, decl: Json, path: string, config: Record<string, number | boolean>): WeightDecl {
  const shape = decl.shape;
  if (!Array.isArray(shape)) fail(`${path}.shape`, `shape is required: a list of sizes, config keys or "input_dim", like ["input_dim", "units"]`);
  if (shape.length > CUSTOM_LAYER_LIMITS.maxWeightRank) fail(`${path}.shape`, `a weight may have at most ${CUSTOM_LAYER_LIMITS.maxWeightRank} axes`);
  shape.forEach((d, i) => {
    const dPath = `${path}.shape[${i}]`;
    if (typeof d === 'number') {
      if (!Number.isInteger(d) || d < 1 || d > CUSTOM_LAYER_LIMITS.maxWeightDim) fail(dPath, `sizes must be whole numbers from 1 to ${CUSTOM_LAYER_LIMITS.maxWeightDim} (got ${describe(d)})`);
    } else if (typeof d === 'string') {
      if (d === 'input_dim') return;
      const v = config[d];
      if (v === undefined) fail(dPath, `"${d}" is neither "input_dim" nor a config key (${Object.keys(config).join(', ') || 'none'})`);
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > CUSTOM_LAYER_LIMITS.maxWeightDim) fail(dPath, `config.${d} = ${describe(v)} is not a size (a whole number from 1 to ${CUSTOM_LAYER_LIMITS.maxWeightDim})`);
    } else {
      fail(dPath, `sizes are whole numbers, config keys or "input_dim" (got ${describe(d)})`);
    }
  });
  // Keras's add_weight default initializer for float weights.
  const initializer = decl.initializer ?? 'glorot_uniform';
  readInitializer(initializer, 'initializer', `${path}.initializer`);
  if (decl.regularizer !== undefined && decl.regularizer !== null) readRegularizer(decl.regularizer, 'regularizer', `${path}.regularizer`);
  if (decl.trainable !== undefined && typeof decl.trainable !== 'boolean') fail(`${path}.trainable`, `trainable must be true or false (got ${describe(decl.trainable)})`);
  return { name, shape: shape as ShapeDim[], initializer, regularizer: decl.regularizer ?? null, trainable: decl.trainable !== false };
}

/** A weight's concrete shape for an input whose last axis is `inputDim`. */
function weightShape(w: WeightDecl, config: Record<string, number | boolean>, inputDim: number | null): number[] {
  return w.shape.map((d) => {
    if (typeof d === 'number') return d;
    if (d === 'input_dim') {
      if (inputDim === null) throw new Error(`weight "${w.name}" uses input_dim, but the input's last axis has no fixed size`);
      return inputDim;
    }
    return config[d] as number;
  });
}

/** Parameters the layer creates on an input whose last axis is `inputDim`. */
export function customLayerParams(spec: CustomLayerSpec, inputDim: number | null): number {
  return spec.weights.reduce((sum, w) => sum + weightShape(w, spec.config, inputDim).reduce((a, b) => a * b, 1), 0);
}

type LayerArgs = ConstructorParameters<typeof tf.layers.Layer>[0];

export interface CustomLayerArgs extends NonNullable<LayerArgs> {
  spec?: CustomLayerSpec;
}

const lastDim = (shape: tf.Shape) => shape[shape.length - 1] ?? null;

export class ExpressionLayer extends tf.layers.Layer {
  static className = 'Custom';
  private readonly spec: CustomLayerSpec;
  private readonly variables = new Map<string, tf.LayerVariable>();
  /** Whether the layer was built on a list of inputs (then `inputs` is a list in the call). */
  private multiInput = false;

  /** From the builder (`spec` already validated) or from a saved config (`definition`). */
  constructor(args: CustomLayerArgs & { definition?: string }) {
    const { spec, definition, ...base } = args as CustomLayerArgs & { definition?: string };
    super(base as LayerArgs);
    this.spec = spec ?? readCustomLayerSpec(JSON.parse(fromSafeText(String(definition))), 'layer');
  }

  private firstShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return Array.isArray(inputShape[0]) ? (inputShape as tf.Shape[])[0]! : (inputShape as tf.Shape);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    this.multiInput = Array.isArray(inputShape[0]);
    const inputDim = lastDim(this.firstShape(inputShape));
    for (const w of this.spec.weights) {
      const init = readInitializer(w.initializer, 'initializer', w.name) as ReturnType<typeof tf.initializers.zeros>;
      const reg = w.regularizer === null ? undefined : (readRegularizer(w.regularizer, 'regularizer', w.name) as ReturnType<typeof tf.regularizers.l2>);
      const v = this.addWeight(w.name, weightShape(w, this.spec.config, inputDim), 'float32', init, reg, w.trainable);
      this.variables.set(w.name, v);
    }
    this.built = true;
  }

  /** The names the call expression sees. */
  private scope(inputs: tf.Tensor | tf.Tensor[], weights: Map<string, tf.Tensor>): Map<string, Value> {
    const first = Array.isArray(inputs) ? inputs[0]! : inputs;
    const scope = new Map<string, Value>([['inputs', Array.isArray(inputs) ? [...inputs] : inputs], ['input_dim', lastDim(first.shape) ?? 0]]);
    for (const [k, v] of Object.entries(this.spec.config)) scope.set(k, v);
    for (const [k, v] of weights) scope.set(k, v);
    return scope;
  }

  private run(inputs: tf.Tensor | tf.Tensor[], weights: Map<string, tf.Tensor>): tf.Tensor {
    try {
      return asFloatTensor(evaluate(this.spec.ast, this.scope(inputs, weights)), 'call');
    } catch (err) {
      if (err instanceof ExpressionError) err.field ??= 'call';
      throw err;
    }
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Json): tf.Tensor {
    return tf.tidy(() => {
      const weights = new Map([...this.variables].map(([k, v]) => [k, v.read()]));
      // tfjs hands a single input over as a one-element list at times.
      const x = !this.multiInput && Array.isArray(inputs) ? inputs[0]! : inputs;
      return this.run(x, weights);
    });
  }

  /** Found by running the call on zeros twice, with different sizes where the input's are unknown. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shapes = Array.isArray(inputShape[0]) ? (inputShape as tf.Shape[]) : [inputShape as tf.Shape];
    const inputDim = lastDim(shapes[0]!);
    const trial = (batch: number, fill: number) =>
      tf.tidy(() => {
        const xs = shapes.map((s) => tf.zeros(s.map((d, i) => (i === 0 ? batch : d ?? fill))));
        const weights = new Map(this.spec.weights.map((w) => [w.name, tf.zeros(weightShape(w, this.spec.config, inputDim))]));
        return this.run(Array.isArray(inputShape[0]) ? xs : xs[0]!, weights).shape;
      });
    const a = trial(2, 3);
    const b = trial(3, 5);
    if (a.length === 0 || a[0] !== 2 || b[0] !== 3) {
      const err = new ExpressionError(`the result must keep the batch axis first (one row per sample); it has shape [${a.join(', ')}] for a batch of 2`, 0, 'an expression that keeps the batch axis');
      err.field = 'call';
      throw err;
    }
    if (a.length !== b.length) throw new Error('call gives outputs of different ranks for different input sizes');
    return a.map((d, i) => (i === 0 || d !== b[i] ? null : d));
  }

  override getConfig(): tf.serialization.ConfigDict {
    const weights: Json = {};
    for (const w of this.spec.weights) {
      weights[w.name] = { shape: w.shape, initializer: w.initializer, regularizer: w.regularizer, trainable: w.trainable };
    }
    const definition = toSafeText(JSON.stringify({ config: this.spec.config, weights, call: this.spec.call }));
    return { ...super.getConfig(), definition };
  }
}
tf.serialization.registerClass(ExpressionLayer);
