/**
 * Builds a tf.LayersModel from Keras model JSON (Keras 2, Keras 3 or a TensorFlow.js model.json),
 * after keras-format/normalize.ts has read it into one internal form. Every layer goes through
 * the same registry as the native spec (layer-registry.ts), with errors at paths into the request.
 * Shared layers (one layer, several inbound nodes) are one tfjs layer applied several times;
 * nested Sequential / Functional models are built and applied as layers.
 */
import * as tf from '@tensorflow/tfjs';
import { SpecError } from '../errors.ts';
import {
  type Ctx,
  type MadeLayer,
  type ModelLimits,
  Namer,
  afterCall,
  beforeCall,
  callLayer,
  checkName,
  cleanMessage,
  createLayer,
  freeWeights,
  guard,
  keepInputShape,
  readInputLayer,
  sameShape,
} from './build-model.ts';
import { type BatchShape, findLayerDef } from './layer-registry.ts';
import { MultiHeadAttention } from './keras-layers.ts';
import { type KLayer, type KModel, type KNode, type KRef, normalizeKerasJson, setLayerLookup } from './keras-format/normalize.ts';

setLayerLookup((cls) => findLayerDef(cls) !== undefined);

type Rec = Record<string, unknown>;

function fail(path: string, message: string, code?: 'LIMIT_EXCEEDED'): never {
  throw new SpecError(path, message, code);
}

function countLayers(m: KModel): number {
  return m.layers.reduce((n, l) => n + 1 + (l.model ? countLayers(l.model) : 0) + (l.inner ? 1 : 0), 0);
}

/** The native entry the registry reads ({"type": class, ...args}), named in ctx.names. */
function entryOf(l: KLayer, ctx: Ctx): Rec {
  const e: Rec = { type: l.className, ...l.args };
  if (l.inner) e.layer = entryOf(l.inner, ctx);
  const name = l.name || ctx.namer.auto(l.className.toLowerCase());
  checkName(name, `${l.configPath}.name`);
  ctx.names.set(e, name);
  return e;
}

function make(l: KLayer, ctx: Ctx): MadeLayer {
  return createLayer(entryOf(l, ctx), l.configPath, ctx, false, `${l.configPath}.layer.config`);
}

function isInput(l: KLayer): boolean {
  return l.className === 'InputLayer';
}

function inputTensor(l: KLayer, ctx: Ctx, hint?: { shape: BatchShape; dtype: tf.DataType }): tf.SymbolicTensor {
  const { batchShape, dtype } = readInputLayer({ type: 'InputLayer', ...l.args }, l.configPath);
  if (hint && !sameShape(batchShape, hint.shape)) {
    fail(l.configPath, `this InputLayer's shape [${batchShape.slice(1)}] does not match the input it is called on, [${hint.shape.slice(1)}]`);
  }
  const name = l.name || ctx.namer.auto('input', true);
  checkName(name, `${l.configPath}.name`);
  return guard(l.path, '', () => tf.input({ batchShape, dtype, name }));
}

type Hint = { shape: BatchShape; dtype: tf.DataType } | undefined;

function buildAny(m: KModel, ctx: Ctx, hint: Hint): tf.LayersModel {
  const model = m.kind === 'sequential' ? buildSequential(m, ctx, hint) : buildFunctional(m, ctx);
  if (m.trainable === false) model.trainable = false;
  return model;
}

function buildSequential(m: KModel, ctx: Ctx, hint: Hint): tf.Sequential {
  const name = m.name ?? ctx.namer.auto('sequential');
  const seq = tf.sequential({ name });
  let start = 0;
  let input: tf.SymbolicTensor | undefined;
  if (isInput(m.layers[0])) {
    input = inputTensor(m.layers[0], ctx, hint);
    start = 1;
    if (m.layers.length === 1) fail(`${m.configPath}.layers`, 'a Sequential model needs at least one layer after its InputLayer');
  }
  for (let i = start; i < m.layers.length; i++) {
    const l = m.layers[i];
    if (isInput(l)) fail(`${l.path}.class_name`, 'an InputLayer can only be the first layer of a Sequential model');
    const first = seq.outputs.length === 0;
    const inShape: BatchShape | undefined = first ? (input?.shape ?? hint?.shape) : seq.outputs[0].shape;
    const inDtype: tf.DataType = (first ? input?.dtype ?? hint?.dtype : seq.outputs[0].dtype) ?? 'float32';
    if (l.model) {
      const sub = buildAny(l.model, ctx, inShape ? { shape: inShape, dtype: inDtype } : undefined);
      guard(l.path, `model "${sub.name}": `, () => seq.add(sub));
      continue;
    }
    const made = make(l, ctx);
    if (!first) {
      beforeCall(made, inShape, l.configPath, ctx);
      guard(l.configPath, `layer "${made.layer.name}" (${made.layer.getClassName()}): `, () => seq.add(made.layer));
      afterCall(made, ctx);
      continue;
    }
    let x = input;
    if (!x) {
      const own = made.layer.batchInputShape as BatchShape | undefined;
      const batchShape = hint?.shape ?? own ?? m.buildInputShape;
      if (!batchShape) {
        fail(`${l.configPath}.batch_input_shape`, 'the first layer of a Sequential model needs "batch_input_shape" (or an InputLayer before it)');
      }
      x = guard(l.configPath, '', () => tf.input({ batchShape, dtype: hint ? inDtype : 'float32', name: `${made.layer.name}_input` }));
    }
    callLayer(made, x, l.configPath, ctx);
    keepInputShape(made.layer, x);
    guard(l.configPath, `layer "${made.layer.name}" (${made.layer.getClassName()}): `, () => seq.add(made.layer));
  }
  return seq;
}

/** Layers whose call takes several tensors as separate arguments rather than one list. */
const MULTI_ARG = new Set(['MultiHeadAttention']);

function callArgs(l: KLayer, node: KNode, resolve: (r: KRef) => tf.SymbolicTensor): { x: tf.SymbolicTensor | tf.SymbolicTensor[]; kwargs: Rec } {
  const kwargs: Rec = {};
  for (const [k, v] of Object.entries(node.kwargs)) {
    if (k === 'mask' || (k === 'return_attention_scores' && v === false)) continue;
    if (l.className === 'MultiHeadAttention' && k === 'use_causal_mask' && typeof v === 'boolean') {
      kwargs.useCausalMask = v;
      continue;
    }
    fail(`${node.path}`, `layer "${l.name}": the call argument ${k}=${JSON.stringify(v)} is not supported here`);
  }
  const ins = node.inputs.map(resolve);
  if (MULTI_ARG.has(l.className)) {
    const value = ins[1] ?? (node.tensorKwargs.value ? resolve(node.tensorKwargs.value) : undefined);
    const key = ins[2] ?? (node.tensorKwargs.key ? resolve(node.tensorKwargs.key) : undefined);
    for (const k of Object.keys(node.tensorKwargs)) {
      if (k !== 'value' && k !== 'key') fail(node.tensorKwargs[k].path, `layer "${l.name}": a tensor for "${k}" (masks) is not supported here`);
    }
    if (!ins[0] || !value) fail(node.path, `layer "${l.name}" (MultiHeadAttention) is called on a query and a value tensor`);
    return { x: key ? [ins[0], value, key] : [ins[0], value], kwargs };
  }
  for (const [k, r] of Object.entries(node.tensorKwargs)) {
    fail(r.path, `layer "${l.name}": passing a tensor as "${k}" (masks, initial states) is not supported here`);
  }
  if (ins.length === 0) fail(node.path, `layer "${l.name}" is called on no tensor`);
  return { x: ins.length === 1 ? ins[0] : ins, kwargs };
}

function buildFunctional(m: KModel, ctx: Ctx): tf.LayersModel {
  const byName = new Map<string, KLayer>();
  for (const l of m.layers) {
    if (byName.has(l.name)) fail(`${l.path}.name`, `duplicate layer name "${l.name}"`);
    byName.set(l.name, l);
  }
  /** Outputs of each call: `${layer}#${node}` -> tensors. */
  const produced = new Map<string, tf.SymbolicTensor[]>();
  const made = new Map<string, { apply: (x: tf.SymbolicTensor | tf.SymbolicTensor[], kwargs: Rec, path: string) => tf.SymbolicTensor[] }>();

  const resolve = (r: KRef): tf.SymbolicTensor => {
    const ts = produced.get(`${r.layer}#${r.node}`);
    if (!ts) fail(r.path, `"${r.layer}" has no output from call ${r.node}`);
    if (r.tensor >= ts.length) fail(r.path, `"${r.layer}" call ${r.node} has ${ts.length} output(s); tensor index ${r.tensor} is out of range`);
    return ts[r.tensor];
  };
  const known = (r: KRef) => {
    const l = byName.get(r.layer);
    if (!l) fail(r.path, `unknown layer "${r.layer}" (layers: ${[...byName.keys()].join(', ')})`);
    const calls = isInput(l) ? 1 : l.nodes.length;
    if (r.node >= calls) fail(r.path, `layer "${r.layer}" is called ${calls} time(s); node index ${r.node} is out of range`);
  };

  // Inputs first (each InputLayer is its own node 0).
  const inputLayers = new Set<string>();
  for (const l of m.layers) {
    if (!isInput(l)) continue;
    produced.set(`${l.name}#0`, [inputTensor(l, ctx)]);
    inputLayers.add(l.name);
  }
  for (const l of m.layers) for (const n of l.nodes) for (const r of [...n.inputs, ...Object.values(n.tensorKwargs)]) known(r);
  m.inputs.forEach(known);
  m.outputs.forEach(known);

  const layerOf = (l: KLayer) => {
    let entry = made.get(l.name);
    if (entry) return entry;
    if (l.model) {
      const sub = buildAny(l.model, ctx, undefined);
      entry = {
        apply: (x, _kwargs, path) => {
          const out = guard(path, `model "${sub.name}": `, () => sub.apply(x)) as tf.SymbolicTensor | tf.SymbolicTensor[];
          return Array.isArray(out) ? out : [out];
        },
      };
    } else {
      const m1 = make(l, ctx);
      entry = {
        apply: (x, kwargs, path) => {
          if (typeof kwargs.useCausalMask === 'boolean' && m1.layer instanceof MultiHeadAttention) m1.layer.useCausalMask = kwargs.useCausalMask;
          const out = callLayer(m1, x, path, ctx);
          return Array.isArray(out) ? out : [out];
        },
      };
    }
    made.set(l.name, entry);
    return entry;
  };

  // Keras's order: repeatedly go through the layers, calling each node whose inputs exist.
  const pending = m.layers.flatMap((l) => (isInput(l) ? [] : l.nodes.map((n, i) => ({ l, n, i }))));
  while (pending.length > 0) {
    let progressed = false;
    for (let k = 0; k < pending.length; k++) {
      const { l, n, i } = pending[k];
      const refs = [...n.inputs, ...Object.values(n.tensorKwargs)];
      if (!refs.every((r) => produced.has(`${r.layer}#${r.node}`))) continue;
      // Calls of one layer happen in node order.
      if (i > 0 && !produced.has(`${l.name}#${i - 1}`)) continue;
      const { x, kwargs } = callArgs(l, n, resolve);
      produced.set(`${l.name}#${i}`, layerOf(l).apply(x, kwargs, l.path));
      pending.splice(k, 1);
      k--;
      progressed = true;
    }
    if (!progressed) {
      const { l, n } = pending[0];
      fail(n.path, `layer "${l.name}" can never be called: its inputs form a cycle or come from calls that never happen`);
    }
  }
  for (const l of m.layers) {
    if (!isInput(l) && l.nodes.length === 0) fail(`${l.path}.inbound_nodes`, `layer "${l.name}" is never called (no inbound nodes)`);
  }
  const inputs = m.inputs.map((r) => {
    if (!inputLayers.has(r.layer)) fail(r.path, `model inputs must be InputLayers; "${r.layer}" is a ${byName.get(r.layer)?.className}`);
    return resolve(r);
  });
  const outputs = m.outputs.map(resolve);
  return guard(m.path, '', () => tf.model({ inputs, outputs, name: m.name ?? ctx.namer.auto('model') }));
}

/** Builds Keras / TensorFlow.js model JSON; errors are SpecErrors with paths under `p`. */
export function buildKerasModel(spec: unknown, p: string, limits: ModelLimits): tf.LayersModel {
  const km = normalizeKerasJson(spec, p);
  const count = countLayers(km);
  if (count > limits.maxLayers) {
    fail(`${km.configPath}.layers`, `the model has ${count} layers, over the limit of ${limits.maxLayers} (maxLayers)`, 'LIMIT_EXCEEDED');
  }
  const ctx: Ctx = { limits, namer: new Namer(new Set()), names: new Map(), params: 0, created: [] };
  try {
    const model = buildAny(km, ctx, undefined);
    if (model instanceof tf.Sequential) guard(km.path, '', () => model.build());
    const total = model.countParams();
    if (total > limits.maxParams) {
      fail(km.path, `the model has ${total} parameters, over the limit of ${limits.maxParams} (maxParams)`, 'LIMIT_EXCEEDED');
    }
    return model;
  } catch (err) {
    freeWeights(ctx.created);
    if (err instanceof SpecError) throw err;
    throw new SpecError(km.path, cleanMessage(err));
  }
}
