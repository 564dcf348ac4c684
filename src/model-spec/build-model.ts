/**
 * The native JSON model spec (API.md) -> tf.LayersModel.
 *
 * Every problem with a spec becomes a SpecError whose path points into the request
 * ("spec.layers[1].units"); nothing tfjs throws while building escapes raw. Layers get
 * Keras-style names ("dense", "dense_1", "re_lu") unless the spec names them.
 */
import * as tf from '@tensorflow/tfjs';
import { SpecError } from '../errors.ts';
import { ExpressionError, expressionSpecError } from '../expressions/parser.ts';
import { buildKerasModel } from './build-keras.ts';
import { isKerasModelJson } from './keras-format/normalize.ts';
import {
  type BatchShape,
  type LayerDef,
  COMMON_ARGS,
  INPUT_LAYER_ALIASES,
  INPUT_LAYER_ARGS,
  KNOWN_CAMEL_ARGS,
  SUPPORTED_LAYER_TYPES,
  camelToSnake,
  findLayerDef,
  isRecurrentDef,
  kerasSnakeCase,
  readLayerArgs,
} from './layer-registry.ts';

/** Resource limits on one model; config may override them. */
export interface ModelLimits {
  /** Most layer entries in a spec, nested ones included. */
  maxLayers: number;
  /** Most parameters (weights) in a model. */
  maxParams: number;
}

export const MODEL_LIMITS: ModelLimits = { maxLayers: 1000, maxParams: 50_000_000 };

/** How deep sequential models and wrapped layers may nest. */
const MAX_NESTING = 8;
const NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;
const REF_RE = /^([A-Za-z0-9_.-]+)(?:\[(\d+)\])?$/;

type Rec = Record<string, unknown>;

const isObject = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const lower = (v: unknown) => (typeof v === 'string' ? v.toLowerCase().replace(/_/g, '') : '');
const isSequentialType = (v: unknown) => lower(v) === 'sequential';
const isFunctionalType = (v: unknown) => lower(v) === 'functional' || lower(v) === 'model';
const isInputLayerType = (v: unknown) => lower(v) === 'inputlayer';

function fail(path: string, message: string, code?: 'LIMIT_EXCEEDED'): never {
  throw new SpecError(path, message, code);
}

/** A tfjs error message made readable: one line, snake_case argument names, bounded. */
export function cleanMessage(err: unknown): string {
  let msg = err instanceof Error ? err.message : String(err);
  msg = msg.replace(/\s+/g, ' ').trim();
  msg = msg.replace(/\s*Input received: .*$/, '');
  // tfjs prints shapes with Array.join: [,8,8,1] for [null, 8, 8, 1].
  msg = msg.replace(/\[((?:-?\d*,)+-?\d*)\]/g, (_m, inner: string) => `[${inner.split(',').map((d) => d || 'null').join(', ')}]`);
  msg = msg.replace(/\b[a-z]+(?:[A-Z][a-z0-9]*)+\b/g, (w) => (KNOWN_CAMEL_ARGS.has(w) ? camelToSnake(w) : w));
  if (msg.length > 500) msg = `${msg.slice(0, 497)}...`;
  return msg || 'the layer could not be built';
}

/** Runs tfjs code; anything it throws becomes a SpecError at `path`. */
export function guard<T>(path: string, label: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof SpecError) throw err;
    if (err instanceof ExpressionError) {
      const at = err.field ? `${path}.${err.field}` : path;
      throw expressionSpecError(err, at, `${label}${err.field ? `${err.field}: ` : ''}${err.message}`);
    }
    throw new SpecError(path, `${label}${cleanMessage(err)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Pass 1: count, check the shape of the tree, and name every layer (in spec order, inner first,
// as Keras names layers in the order Python constructs them).

export class Namer {
  private readonly used = new Set<string>();
  private readonly counters = new Map<string, number>();
  constructor(private readonly reserved: Set<string>) {}

  claim(name: string, path: string): void {
    if (this.used.has(name)) {
      fail(path, `duplicate name "${name}": layer and input names must be unique within a model`);
    }
    this.used.add(name);
  }

  /** Keras's unique_object_name: "dense", "dense_1", ... ("input_1", ... when one-based). */
  auto(base: string, oneBased = false): string {
    let n = this.counters.get(base) ?? (oneBased ? 1 : 0);
    for (;;) {
      const name = n === 0 ? base : `${base}_${n}`;
      n++;
      if (!this.used.has(name) && !this.reserved.has(name)) {
        this.counters.set(base, n);
        this.used.add(name);
        return name;
      }
    }
  }
}

export interface Ctx {
  limits: ModelLimits;
  namer: Namer;
  /** The name given to each layer entry (and nested sequential entry). */
  names: Map<object, string>;
  /** Parameters created so far. */
  params: number;
  /** Every layer made, to free its weights when the build fails. */
  created: tf.layers.Layer[];
}

/** Counts layer entries (nested included), refusing anything nested too deep. */
function countLayers(entries: unknown, path: string, depth: number): number {
  if (depth > MAX_NESTING) fail(path, `models and wrapped layers nest at most ${MAX_NESTING} deep`);
  if (!Array.isArray(entries)) return 0;
  let n = 0;
  entries.forEach((e, i) => {
    n += 1;
    if (!isObject(e)) return;
    if (isSequentialType(e.type)) n += countLayers(e.layers, `${path}[${i}].layers`, depth + 1);
    if (isObject(e.layer)) n += countLayers([e.layer], `${path}[${i}].layer`, depth + 1);
  });
  return n;
}

/** Every `name` the spec gives, so that automatic names avoid them. */
function collectNames(node: unknown, out: Set<string>, depth = 0): void {
  if (depth > 4 * MAX_NESTING) return;
  if (Array.isArray(node)) node.forEach((x) => collectNames(x, out, depth + 1));
  else if (isObject(node)) {
    if (typeof node.name === 'string') out.add(node.name);
    for (const key of ['layers', 'layer', 'inputs']) {
      if (key in node && typeof node[key] !== 'string') collectNames(node[key], out, depth + 1);
    }
  }
}

export function checkName(v: unknown, path: string): string {
  if (typeof v !== 'string' || !NAME_RE.test(v)) {
    fail(path, `name must be 1-128 characters from A-Z, a-z, 0-9, "_", "." and "-" (got ${JSON.stringify(v) ?? String(v)})`);
  }
  return v;
}

function unknownType(type: unknown, path: string): never {
  if (typeof type !== 'string') fail(path, `type is required: a Keras layer class name such as "Dense"`);
  const custom = 'write it as a Custom expression layer: {"type": "Custom", "weights": {...}, "call": "..."} (docs/expressions.md)';
  if (/^(lambda|tfoplambda|slicingoplambda)$/i.test(type)) fail(path, `"${type}" layers hold Python code, which cannot run here; ${custom}`);
  fail(path, `unknown layer type "${type}"; supported types: ${SUPPORTED_LAYER_TYPES.join(', ')}; for anything else, ${custom}`);
}

const SEQUENTIAL_KEYS = ['type', 'name', 'layers', 'trainable'];

/** Names one layer entry (recursing into nested sequential models and wrapped layers). */
function nameEntry(e: unknown, path: string, ctx: Ctx, where: 'sequential' | 'functional' | 'wrapped'): void {
  if (!isObject(e)) fail(path, `a layer must be an object such as {"type": "Dense", "units": 64}`);
  const userName = e.name === undefined ? undefined : checkName(e.name, `${path}.name`);
  if (isSequentialType(e.type)) {
    if (where === 'wrapped') fail(`${path}.type`, 'a wrapper takes a single layer, not a model');
    const allowed = where === 'functional' ? [...SEQUENTIAL_KEYS, 'inputs'] : SEQUENTIAL_KEYS;
    for (const key of Object.keys(e)) {
      if (!allowed.includes(key)) fail(`${path}.${key}`, `unknown key "${key}" for a nested sequential model; accepted: ${allowed.join(', ')}`);
    }
    nameLayerList(e.layers, `${path}.layers`, ctx);
    if (userName) ctx.namer.claim(userName, `${path}.name`);
    ctx.names.set(e, userName ?? ctx.namer.auto('sequential'));
    return;
  }
  if (isFunctionalType(e.type)) {
    fail(`${path}.type`, 'a nested functional model is not supported; nest a "sequential" model, or wire its layers into this one');
  }
  if (isInputLayerType(e.type)) {
    if (userName) ctx.namer.claim(userName, `${path}.name`);
    ctx.names.set(e, userName ?? ctx.namer.auto('input', true));
    return;
  }
  const def = typeof e.type === 'string' ? findLayerDef(e.type) : undefined;
  if (!def) unknownType(e.type, `${path}.type`);
  if (def.wrapsLayer) {
    if (!isObject(e.layer)) fail(`${path}.layer`, `${def.className} needs "layer": the layer spec it wraps, e.g. {"type": "LSTM", "units": 32}`);
    nameEntry(e.layer, `${path}.layer`, ctx, 'wrapped');
  }
  if (userName) ctx.namer.claim(userName, `${path}.name`);
  ctx.names.set(e, userName ?? ctx.namer.auto(kerasSnakeCase(def.className)));
}

function nameLayerList(list: unknown, path: string, ctx: Ctx): void {
  if (!Array.isArray(list) || list.length === 0) fail(path, 'layers must be a non-empty list of layer specs');
  list.forEach((e, i) => nameEntry(e, `${path}[${i}]`, ctx, 'sequential'));
}

// ---------------------------------------------------------------------------------------------
// Pass 2: build

export interface MadeLayer {
  layer: tf.layers.Layer;
  /** Parameters this layer will create on an input of this shape (batch dim first). */
  estimate: (shape: BatchShape) => number;
  /** Checks an input shape before the call, with paths to the arguments, and adjusts the layer to it. */
  check: (shape: BatchShape) => void;
}

/** Validates a layer entry and constructs the tfjs layer (not yet called on anything). */
export function createLayer(e: Rec, path: string, ctx: Ctx, skipInputsKey: boolean, innerPath = `${path}.layer`): MadeLayer {
  const def = findLayerDef(e.type as string) as LayerDef;
  const skip = new Set(['type']);
  if (skipInputsKey) skip.add('inputs');
  else if ('inputs' in e) {
    fail(`${path}.inputs`, '"inputs" wires layers by name in a functional model; in a sequential model each layer takes the output of the one before');
  }
  if (def.wrapsLayer) skip.add('layer');
  const { args, keyOf } = readLayerArgs(def, e, path, skip, COMMON_ARGS);
  args.name = ctx.names.get(e);
  const argPath = (camel: string) => `${path}.${keyOf(camel)}`;
  let estimate = (shape: BatchShape) => (def.estimateParams ? def.estimateParams(args, shape) : 0);
  let layer: tf.layers.Layer | undefined;
  let check = (shape: BatchShape) => {
    def.checkInput?.(args, shape, argPath);
    if (layer) def.beforeCall?.(layer, args, shape);
  };

  if (def.wrapsLayer) {
    const innerEntry = e.layer as Rec;
    const innerDef = findLayerDef(innerEntry.type as string) as LayerDef;
    if (def.className === 'Bidirectional' && !isRecurrentDef(innerDef)) {
      fail(`${innerPath}.type`, `Bidirectional wraps a recurrent layer (LSTM, GRU or SimpleRNN), not ${innerDef.className}`);
    }
    const inner = createLayer(innerEntry, innerPath, ctx, false, `${innerPath}.layer`);
    args.layer = inner.layer;
    if (def.className === 'Bidirectional') {
      estimate = (shape) => 2 * inner.estimate(shape);
      check = (shape) => inner.check(shape);
    } else {
      // TimeDistributed applies the layer to each step: drop the time axis.
      const stepShape = (shape: BatchShape) => [shape[0], ...shape.slice(2)];
      estimate = (shape) => inner.estimate(stepShape(shape));
      check = (shape) => inner.check(stepShape(shape));
    }
  }
  const made = guard(path, `${def.className}: `, () => def.create(args));
  layer = made;
  ctx.created.push(made);
  return { layer: made, estimate, check };
}

/** Shape checks and the parameter budget, before tfjs allocates anything. */
export function beforeCall(made: MadeLayer, shape: BatchShape | undefined, path: string, ctx: Ctx): void {
  if (!shape) return;
  made.check(shape);
  const est = made.estimate(shape);
  if (ctx.params + est > ctx.limits.maxParams) {
    fail(
      path,
      `layer "${made.layer.name}" would bring the model to ${ctx.params + est} parameters, over the limit of ` +
        `${ctx.limits.maxParams} (maxParams)`,
      'LIMIT_EXCEEDED',
    );
  }
}

export function afterCall(made: MadeLayer, ctx: Ctx): void {
  try {
    ctx.params += made.layer.countParams();
  } catch {
    // not built: no weights
  }
}

export function callLayer(made: MadeLayer, x: tf.SymbolicTensor | tf.SymbolicTensor[], path: string, ctx: Ctx) {
  const shape = Array.isArray(x) ? x[0]?.shape : x.shape;
  beforeCall(made, shape, path, ctx);
  const label = `layer "${made.layer.name}" (${made.layer.getClassName()}): `;
  const out = guard(path, label, () => made.layer.apply(x)) as tf.SymbolicTensor | tf.SymbolicTensor[];
  afterCall(made, ctx);
  return out;
}

/**
 * The first layer of a sequential model records the shape it was called on, so that the saved
 * model.json (which has no InputLayer for a Sequential) loads back.
 */
export function keepInputShape(layer: tf.layers.Layer, x: tf.SymbolicTensor): void {
  const l = layer as unknown as { batchInputShape?: BatchShape; dtype: tf.DataType };
  if (!l.batchInputShape) l.batchInputShape = [...x.shape];
}

export function sameShape(a: BatchShape, b: BatchShape): boolean {
  return a.length === b.length && a.every((d, i) => i === 0 || d === null || b[i] === null || d === b[i]);
}

export function readInputLayer(e: Rec, path: string): { batchShape: BatchShape; dtype: 'float32' | 'int32' } {
  const def = { className: 'InputLayer', args: {}, create: () => { throw new Error('unused'); } } as LayerDef;
  const { args } = readLayerArgs(def, e, path, new Set(['type']), INPUT_LAYER_ARGS, INPUT_LAYER_ALIASES);
  const batchShape = (args.batchInputShape as BatchShape | undefined) ??
    (args.inputShape ? [(args.batchSize as number | undefined) ?? null, ...(args.inputShape as BatchShape)] : undefined);
  if (!batchShape) fail(`${path}.shape`, 'an InputLayer needs "shape" (or "input_shape" / "batch_shape")');
  return { batchShape, dtype: (args.dtype as 'float32' | 'int32' | undefined) ?? 'float32' };
}

/**
 * A sequential model from `{"layers": [...]}`. `hint` is the tensor it will be called on, when
 * nested: its first layer then takes its input shape from there.
 */
function buildSequential(
  e: Rec,
  path: string,
  ctx: Ctx,
  name: string,
  hint: { shape: BatchShape; dtype: tf.DataType } | undefined,
): tf.Sequential {
  const entries = e.layers as Rec[];
  const seq = tf.sequential({ name });
  if (e.trainable !== undefined) {
    if (typeof e.trainable !== 'boolean') fail(`${path}.trainable`, 'trainable must be true or false');
    seq.trainable = e.trainable;
  }
  let start = 0;
  let input: tf.SymbolicTensor | undefined;
  if (isInputLayerType(entries[0].type)) {
    const { batchShape, dtype } = readInputLayer(entries[0], `${path}.layers[0]`);
    if (hint && !sameShape(batchShape, hint.shape)) {
      fail(`${path}.layers[0]`, `this InputLayer's shape [${batchShape.slice(1)}] does not match the input it is called on, [${hint.shape.slice(1)}]`);
    }
    input = guard(`${path}.layers[0]`, '', () => tf.input({ batchShape, dtype, name: ctx.names.get(entries[0]) }));
    start = 1;
    if (entries.length === 1) fail(`${path}.layers`, 'a sequential model needs at least one layer after its InputLayer');
  }

  for (let i = start; i < entries.length; i++) {
    const le = entries[i];
    const lpath = `${path}.layers[${i}]`;
    if (isInputLayerType(le.type)) fail(`${lpath}.type`, 'an InputLayer can only be the first layer of a sequential model');
    const isFirst = seq.outputs.length === 0;
    const inShape: BatchShape | undefined = isFirst ? (input?.shape ?? hint?.shape) : seq.outputs[0].shape;
    const inDtype: tf.DataType = (isFirst ? input?.dtype ?? hint?.dtype : seq.outputs[0].dtype) ?? 'float32';

    if (isSequentialType(le.type)) {
      const sub = buildSequential(le, lpath, ctx, ctx.names.get(le) as string, inShape ? { shape: inShape, dtype: inDtype } : undefined);
      guard(lpath, `model "${sub.name}": `, () => seq.add(sub));
      continue;
    }

    const made = createLayer(le, lpath, ctx, false);
    if (!isFirst) {
      beforeCall(made, inShape, lpath, ctx);
      guard(lpath, `layer "${made.layer.name}" (${made.layer.getClassName()}): `, () => seq.add(made.layer));
      afterCall(made, ctx);
      continue;
    }
    // The first layer: call it on an input ourselves (as tfjs's add would), so the parameter
    // budget is checked first and the InputLayer gets Keras's name ("dense_input").
    let x = input;
    if (!x) {
      const own = made.layer.batchInputShape as BatchShape | undefined;
      const ownPath = `${lpath}.${'batch_input_shape' in le ? 'batch_input_shape' : 'input_shape'}`;
      if (own && hint && !sameShape(own, hint.shape)) {
        fail(ownPath, `input shape [${own.slice(1)}] does not match the input this model is called on, [${hint.shape.slice(1)}]`);
      }
      // The tensor a nested model is called on knows more than the layer's own shape
      // (an Embedding always has one: [null, input_length or null]).
      const batchShape = hint?.shape ?? own;
      if (!batchShape) {
        fail(
          `${lpath}.input_shape`,
          'the first layer of a sequential model needs "input_shape" (or "batch_input_shape", or an ' +
            '{"type": "InputLayer", "shape": [...]} before it)',
        );
      }
      x = guard(lpath, '', () => tf.input({ batchShape, dtype: hint ? inDtype : 'float32', name: `${made.layer.name}_input` }));
    }
    callLayer(made, x, lpath, ctx);
    keepInputShape(made.layer, x);
    guard(lpath, `layer "${made.layer.name}" (${made.layer.getClassName()}): `, () => seq.add(made.layer));
  }
  return seq;
}

interface Ref {
  name: string;
  index?: number;
  path: string;
}

function parseRefs(value: unknown, path: string, what: string): Ref[] {
  const one = (v: unknown, p: string): Ref => {
    const m = typeof v === 'string' ? REF_RE.exec(v) : null;
    if (!m) fail(p, `${what} must name an input or a layer (optionally "name[i]" for its i-th output) (got ${JSON.stringify(v) ?? String(v)})`);
    return { name: m[1], index: m[2] === undefined ? undefined : Number(m[2]), path: p };
  };
  if (typeof value === 'string') return [one(value, path)];
  if (Array.isArray(value) && value.length > 0) return value.map((v, j) => one(v, `${path}[${j}]`));
  fail(path, `${what} must be a name or a non-empty list of names (got ${JSON.stringify(value) ?? String(value)})`);
}

const FUNCTIONAL_KEYS = ['type', 'name', 'inputs', 'layers', 'outputs'];

function buildFunctional(spec: Rec, path: string, ctx: Ctx, modelName: string): tf.LayersModel {
  const rawInputs = spec.inputs as Rec[];
  const tensors = new Map<string, tf.SymbolicTensor[]>();
  const modelInputs: tf.SymbolicTensor[] = [];
  rawInputs.forEach((inp, i) => {
    const ipath = `${path}.inputs[${i}]`;
    const { batchShape, dtype } = readInputLayer(inp, ipath);
    const t = guard(ipath, '', () => tf.input({ batchShape, dtype, name: inp.name as string }));
    tensors.set(inp.name as string, [t]);
    modelInputs.push(t);
  });

  const entries = spec.layers as Rec[];
  const names = entries.map((e) => ctx.names.get(e) as string);
  const index = new Map(names.map((n, i) => [n, i]));
  const known = () => [...tensors.keys(), ...names].join(', ');

  const refs = entries.map((e, i) => {
    const lpath = `${path}.layers[${i}]`;
    if (isInputLayerType(e.type)) fail(`${lpath}.type`, `declare model inputs in ${path}.inputs, not as layers`);
    if (e.inputs === undefined) {
      fail(`${lpath}.inputs`, 'inputs is required in a functional model: the name(s) of the inputs or layers this layer is called on');
    }
    const list = parseRefs(e.inputs, `${lpath}.inputs`, 'inputs');
    for (const r of list) {
      if (!tensors.has(r.name) && !index.has(r.name)) fail(r.path, `unknown name "${r.name}": no input or layer has that name (names: ${known()})`);
    }
    return list;
  });

  // Topological order (depth-first, in spec order), refusing cycles.
  const state = new Array<number>(entries.length).fill(0);
  const order: number[] = [];
  const stack: number[] = [];
  const visit = (i: number): void => {
    state[i] = 1;
    stack.push(i);
    for (const r of refs[i]) {
      const k = index.get(r.name);
      if (k === undefined) continue;
      if (state[k] === 1) {
        const cycle = [...stack.slice(stack.indexOf(k)), k].map((j) => names[j]);
        fail(r.path, `layers form a cycle: ${cycle.join(' -> ')}`);
      }
      if (state[k] === 0) visit(k);
    }
    stack.pop();
    state[i] = 2;
    order.push(i);
  };
  entries.forEach((_e, i) => {
    if (state[i] === 0) visit(i);
  });

  const outRefs = parseRefs(spec.outputs, `${path}.outputs`, 'outputs');
  const seenOut = new Set<string>();
  for (const r of outRefs) {
    if (!tensors.has(r.name) && !index.has(r.name)) fail(r.path, `outputs names "${r.name}", but no layer or input has that name (names: ${known()})`);
    const key = `${r.name}[${r.index ?? ''}]`;
    if (seenOut.has(key)) fail(r.path, `"${r.name}" is listed twice in outputs`);
    seenOut.add(key);
  }

  // Every layer and input must lead to an output (Keras would drop them without a word).
  const used = new Set<string>();
  const mark = (name: string): void => {
    if (used.has(name)) return;
    used.add(name);
    const k = index.get(name);
    if (k !== undefined) refs[k].forEach((r) => mark(r.name));
  };
  outRefs.forEach((r) => mark(r.name));
  entries.forEach((_e, i) => {
    if (!used.has(names[i])) fail(`${path}.layers[${i}]`, `layer "${names[i]}" does not lead to any output; use it or remove it`);
  });
  rawInputs.forEach((inp, i) => {
    if (!used.has(inp.name as string)) fail(`${path}.inputs[${i}]`, `input "${inp.name}" is not used by any output`);
  });

  const resolve = (r: Ref): tf.SymbolicTensor[] => {
    const ts = tensors.get(r.name) as tf.SymbolicTensor[];
    if (r.index === undefined) return ts;
    if (r.index >= ts.length) fail(r.path, `"${r.name}" has ${ts.length} output(s); index ${r.index} is out of range`);
    return [ts[r.index]];
  };

  for (const i of order) {
    const e = entries[i];
    const lpath = `${path}.layers[${i}]`;
    const ins = refs[i].flatMap(resolve);
    const x = ins.length === 1 ? ins[0] : ins;
    let out: tf.SymbolicTensor | tf.SymbolicTensor[];
    if (isSequentialType(e.type)) {
      if (ins.length !== 1) fail(`${lpath}.inputs`, `a nested sequential model is called on exactly one tensor (got ${ins.length})`);
      const sub = buildSequential(e, lpath, ctx, names[i], { shape: ins[0].shape, dtype: ins[0].dtype });
      out = guard(lpath, `model "${sub.name}": `, () => sub.apply(ins[0])) as tf.SymbolicTensor | tf.SymbolicTensor[];
    } else {
      out = callLayer(createLayer(e, lpath, ctx, true), x, lpath, ctx);
    }
    tensors.set(names[i], Array.isArray(out) ? out : [out]);
  }

  const outputs = outRefs.flatMap(resolve);
  return guard(path, '', () => tf.model({ inputs: modelInputs, outputs, name: modelName }));
}

export function freeWeights(layers: tf.layers.Layer[]): void {
  for (const layer of layers) {
    let weights: tf.LayerVariable[] = [];
    try {
      weights = layer.weights;
    } catch {
      continue;
    }
    for (const w of weights) {
      try {
        w.dispose();
      } catch {
        // already freed (shared by a wrapper or a nested model)
      }
    }
  }
}

/**
 * Builds a tf.LayersModel from the native spec; throws SpecError with a path like
 * "spec.layers[1].units" (prefix given by `pathPrefix`). Over a limit in `limits`:
 * SpecError with code LIMIT_EXCEEDED. On any error, the weights made so far are freed.
 */
export function buildModel(spec: unknown, pathPrefix = 'spec', limits: ModelLimits = MODEL_LIMITS): tf.LayersModel {
  const p = pathPrefix;
  if (!isObject(spec)) fail(p, 'spec must be an object: {"type": "sequential", "layers": [...]} or {"type": "functional", ...}');
  const kind = isSequentialType(spec.type) ? 'sequential' : lower(spec.type) === 'functional' ? 'functional' : undefined;
  if (!kind && isKerasModelJson(spec)) return buildKerasModel(spec, p, limits);
  if (!kind) {
    fail(`${p}.type`, `type must be "sequential" or "functional" (got ${JSON.stringify(spec.type) ?? 'nothing'})`);
  }
  const allowed = kind === 'sequential' ? ['type', 'name', 'layers'] : FUNCTIONAL_KEYS;
  for (const key of Object.keys(spec)) {
    if (!allowed.includes(key)) fail(`${p}.${key}`, `unknown key "${key}" for a ${kind} model; accepted: ${allowed.join(', ')}`);
  }
  if (!Array.isArray(spec.layers) || spec.layers.length === 0) fail(`${p}.layers`, 'layers must be a non-empty list of layer specs');
  const count = countLayers(spec.layers, `${p}.layers`, 0);
  if (count > limits.maxLayers) {
    fail(`${p}.layers`, `the model has ${count} layers, over the limit of ${limits.maxLayers} (maxLayers)`, 'LIMIT_EXCEEDED');
  }
  const userModelName = spec.name === undefined ? undefined : checkName(spec.name, `${p}.name`);

  const reserved = new Set<string>();
  collectNames(spec.layers, reserved);
  if (kind === 'functional') collectNames(spec.inputs, reserved);
  const ctx: Ctx = { limits, namer: new Namer(reserved), names: new Map(), params: 0, created: [] };

  try {
    let model: tf.LayersModel;
    if (kind === 'sequential') {
      const name = userModelName ?? ctx.namer.auto('sequential');
      nameLayerList(spec.layers, `${p}.layers`, ctx);
      model = buildSequential(spec, p, ctx, name, undefined);
      guard(p, '', () => (model as tf.Sequential).build());
    } else {
      if (!Array.isArray(spec.inputs) || spec.inputs.length === 0) {
        fail(`${p}.inputs`, 'inputs must be a non-empty list of {"name": "in1", "shape": [784]}');
      }
      spec.inputs.forEach((inp, i) => {
        if (!isObject(inp)) fail(`${p}.inputs[${i}]`, 'an input must be an object such as {"name": "in1", "shape": [784]}');
        if (inp.name === undefined) fail(`${p}.inputs[${i}].name`, 'each input needs a "name"; layers refer to it by that name');
        ctx.namer.claim(checkName(inp.name, `${p}.inputs[${i}].name`), `${p}.inputs[${i}].name`);
      });
      (spec.layers as unknown[]).forEach((e, i) => nameEntry(e, `${p}.layers[${i}]`, ctx, 'functional'));
      model = buildFunctional(spec, p, ctx, userModelName ?? 'model');
    }
    const total = model.countParams();
    if (total > limits.maxParams) {
      fail(p, `the model has ${total} parameters, over the limit of ${limits.maxParams} (maxParams)`, 'LIMIT_EXCEEDED');
    }
    return model;
  } catch (err) {
    freeWeights(ctx.created);
    if (err instanceof SpecError) throw err;
    throw new SpecError(p, cleanMessage(err));
  }
}
