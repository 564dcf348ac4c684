/**
 * Keras model JSON -> one internal form (KModel), before anything is built.
 *
 * Three flavours arrive, recognised by their keys:
 *  - "keras2": `model.to_json()` of Keras 2 / tf.keras (inbound nodes as nested lists
 *    [[["layer", node, tensor, {kwargs}], ...]], `batch_input_shape`, dtype strings; Keras <= 2.2
 *    wrote a Sequential's config as the bare layer list);
 *  - "keras3": `model.to_json()` of Keras 3 (`module` / `registered_name` / `build_config` keys,
 *    inbound nodes as {"args": [{"class_name": "__keras_tensor__", "config": {"keras_history":
 *    [layer, node, tensor]}}], "kwargs": {}}, `batch_shape`, dtypes as DTypePolicy objects);
 *  - "tfjs": the `modelTopology` of a TensorFlow.js model.json (the Keras 2 form, or
 *    {"model_config": ..., "keras_version", "backend"} as tensorflowjs_converter writes it), or
 *    the whole model.json object.
 *
 * Pure data: nothing here touches tfjs (as tfjs-layers keeps keras_format/ apart). Every problem is a
 * SpecError whose path points into the request. Layer arguments stay under the keys the request
 * used, so the layer registry's messages point at them too (`batch_shape` is renamed
 * `batch_input_shape`, the one rename).
 */
import { SpecError } from '../../errors.ts';

export type KerasFlavour = 'keras2' | 'keras3' | 'tfjs';

/** A tensor made by a layer: its `node`-th call, `tensor`-th output. */
export interface KRef {
  layer: string;
  node: number;
  tensor: number;
  path: string;
}

/** One call of a layer (an inbound node). */
export interface KNode {
  /** Positional tensor arguments, flattened in order (a merge layer's list of inputs included). */
  inputs: KRef[];
  /** Tensors passed by keyword (MultiHeadAttention's value and key). */
  tensorKwargs: Record<string, KRef>;
  /** Other keyword arguments (use_causal_mask, ...); `training` and nulls are left out. */
  kwargs: Record<string, unknown>;
  path: string;
}

export interface KLayer {
  /** Keras class name as written (aliases are resolved by the registry). */
  className: string;
  name: string;
  /** Path of the layer object in the request. */
  path: string;
  /** Path of its config object (arguments are reported under it). */
  configPath: string;
  /** Arguments, snake_case as Keras writes them, without "name"; cleaned of Keras-only keys. */
  args: Record<string, unknown>;
  /** The layer a Bidirectional / TimeDistributed wraps. */
  inner?: KLayer;
  /** A nested Sequential / Functional model used as a layer. */
  model?: KModel;
  /** Its calls in a functional model (empty inside a sequential one). */
  nodes: KNode[];
}

export interface KModel {
  kind: 'sequential' | 'functional';
  flavour: KerasFlavour;
  name?: string;
  path: string;
  configPath: string;
  layers: KLayer[];
  /** Functional models: the model's inputs and outputs. */
  inputs: KRef[];
  outputs: KRef[];
  /** Sequential models: Keras 3's build_input_shape, when the layers do not say their input. */
  buildInputShape?: Array<number | null>;
  trainable?: boolean;
}

type Rec = Record<string, unknown>;
const isObject = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(path: string, message: string): never {
  throw new SpecError(path, message);
}

function show(v: unknown): string {
  const t = JSON.stringify(v);
  if (t === undefined) return String(v);
  return t.length > 80 ? `${t.slice(0, 77)}...` : t;
}

/** Keys that say "this is Keras / TensorFlow.js model JSON, not the native spec". */
export function isKerasModelJson(spec: unknown): boolean {
  return isObject(spec) && ('class_name' in spec || 'modelTopology' in spec || 'model_config' in spec);
}

const MODEL_CLASSES: Record<string, 'sequential' | 'functional'> = {
  Sequential: 'sequential',
  Functional: 'functional',
  Model: 'functional',
};

/** Layers that hold Python code: never runnable here. */
const PYTHON_CODE_LAYERS = new Set(['Lambda', 'TFOpLambda', 'SlicingOpLambda', 'TensorFlowOpLayer', 'TFOpLayer']);

/** Keras 3 / Keras 2 keys that change nothing when null, false or absent (dropped here). */
const NEUTRAL_WHEN_EMPTY = new Set(['lora_rank', 'lora_alpha', 'quantization_config', 'quantization_mode', 'gradient_checkpointing']);
/** Implementation choices with no effect on the result. */
const IMPLEMENTATION_KEYS = new Set(['implementation', 'use_cudnn', 'autocast', 'fused']);

const FLOAT_DTYPES = new Set(['float32', 'float16', 'float64', 'bfloat16', 'mixed_float16', 'mixed_bfloat16']);

/** A Keras 3 DTypePolicy object ({"class_name": "DTypePolicy", "config": {"name": "float32"}}) -> its name. */
function dtypeName(v: unknown): unknown {
  if (isObject(v) && typeof v.class_name === 'string' && /DTypePolicy$/.test(v.class_name) && isObject(v.config)) return v.config.name;
  if (isObject(v) && typeof v.name === 'string' && !('class_name' in v)) return v.name;
  return v;
}

/**
 * Keras serialisation wrappers -> plain JSON: {"class_name": "__tuple__", "items": [...]} and
 * TensorShape objects become lists; Keras 3's {"module", "class_name", "config", "registered_name"}
 * objects lose module/registered_name; a Keras 3 function reference
 * ({"class_name": "function", "config": "relu"}) becomes its name; dtype policies their name;
 * "dtype": "float32" inside an initializer's config (TF 1.x) is dropped.
 */
function plain(v: unknown, depth = 0): unknown {
  if (depth > 64) return v;
  if (Array.isArray(v)) return v.map((x) => plain(x, depth + 1));
  if (!isObject(v)) return v;
  if ((v.class_name === '__tuple__' || v.class_name === 'TensorShape' || v.class_name === '__list__') && Array.isArray(v.items)) {
    return plain(v.items, depth + 1);
  }
  if (v.class_name === 'function' && typeof v.config === 'string') return v.config;
  if (typeof v.class_name === 'string' && /DTypePolicy$/.test(v.class_name)) return dtypeName(v);
  const out: Rec = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'module' || k === 'registered_name') continue;
    out[k] = plain(x, depth + 1);
  }
  if (typeof out.class_name === 'string' && isObject(out.config) && out.config.dtype === 'float32') {
    const { dtype: _d, ...rest } = out.config;
    out.config = rest;
  }
  return out;
}

function readModelRoot(spec: Rec, path: string): { root: Rec; path: string; flavour: KerasFlavour } {
  let root = spec;
  let p = path;
  let flavour: KerasFlavour | undefined;
  if (root.format === 'graph-model' || (isObject(root.modelTopology) && Array.isArray(root.modelTopology.node))) {
    fail(
      `${p}${root.format === 'graph-model' ? '.format' : '.modelTopology'}`,
      'this is a TensorFlow.js graph model (converted from a SavedModel): it holds operations, not Keras layers, and cannot be ' +
        'trained here. Convert the Keras model instead (tensorflowjs_converter --input_format=keras, output tfjs_layers_model), ' +
        'or send model.to_json()',
    );
  }
  if ('modelTopology' in root) {
    flavour = 'tfjs';
    if (!isObject(root.modelTopology)) fail(`${p}.modelTopology`, 'modelTopology must be an object: the model\'s topology as TensorFlow.js writes it in model.json');
    root = root.modelTopology;
    p = `${p}.modelTopology`;
  }
  const version = typeof root.keras_version === 'string' ? root.keras_version : undefined;
  if ('model_config' in root) {
    if (!isObject(root.model_config)) fail(`${p}.model_config`, 'model_config must be an object {"class_name": ..., "config": {...}}');
    root = root.model_config;
    p = `${p}.model_config`;
  }
  const keys = JSON.stringify(root);
  const keras3 = 'module' in root || 'registered_name' in root || 'build_config' in root || keys.includes('"__keras_tensor__"') ||
    (version?.startsWith('3.') ?? false);
  if (keras3) flavour = 'keras3';
  else if (version?.startsWith('tfjs')) flavour = 'tfjs';
  return { root, path: p, flavour: flavour ?? 'keras2' };
}

/**
 * Reads Keras / TensorFlow.js model JSON into a KModel. `path` is where `spec` sits in the request.
 */
export function normalizeKerasJson(spec: unknown, path = 'spec'): KModel {
  if (!isObject(spec)) fail(path, 'a Keras model must be an object {"class_name": "Sequential" | "Functional", "config": {...}}');
  const { root, path: p, flavour } = readModelRoot(spec, path);
  return readModel(root, p, flavour, 0);
}

const MAX_DEPTH = 8;

function readModel(obj: Rec, path: string, flavour: KerasFlavour, depth: number): KModel {
  if (depth > MAX_DEPTH) fail(path, `models nest at most ${MAX_DEPTH} deep`);
  const cls = obj.class_name;
  if (typeof cls !== 'string') fail(`${path}.class_name`, 'class_name is required: "Sequential", "Functional" or "Model"');
  const kind = MODEL_CLASSES[cls];
  if (!kind) {
    fail(`${path}.class_name`, `the top level of Keras model JSON must be a "Sequential", "Functional" or "Model" (got ${show(cls)}); a single layer is not a model`);
  }
  const configPath = `${path}.config`;
  const cfg = obj.config;
  if (kind === 'sequential') {
    // Keras <= 2.2 wrote a Sequential's config as the bare list of layers.
    const layerList = Array.isArray(cfg) ? cfg : isObject(cfg) ? cfg.layers : undefined;
    const layersPath = Array.isArray(cfg) ? configPath : `${configPath}.layers`;
    if (!Array.isArray(layerList) || layerList.length === 0) fail(layersPath, 'a Sequential model needs a non-empty "layers" list');
    const c = isObject(cfg) ? cfg : {};
    const layers = layerList.map((l, i) => readLayer(l, `${layersPath}[${i}]`, flavour, depth, false));
    const model: KModel = { kind, flavour, path, configPath, layers, inputs: [], outputs: [] };
    if (typeof c.name === 'string') model.name = c.name;
    if (typeof c.trainable === 'boolean') model.trainable = c.trainable;
    const bis = plain(c.build_input_shape ?? (isObject(obj.build_config) ? obj.build_config.input_shape : undefined));
    if (Array.isArray(bis) && bis.length >= 2 && bis.every((d) => d === null || (Number.isInteger(d) && (d as number) > 0))) {
      model.buildInputShape = bis as Array<number | null>;
    }
    return model;
  }
  if (!isObject(cfg)) fail(configPath, 'a Functional model\'s config must be an object with "layers", "input_layers" and "output_layers"');
  if (!Array.isArray(cfg.layers) || cfg.layers.length === 0) fail(`${configPath}.layers`, 'a Functional model needs a non-empty "layers" list');
  const layers = cfg.layers.map((l, i) => readLayer(l, `${configPath}.layers[${i}]`, flavour, depth, true));
  const model: KModel = {
    kind,
    flavour,
    path,
    configPath,
    layers,
    inputs: readRefList(cfg.input_layers, `${configPath}.input_layers`),
    outputs: readRefList(cfg.output_layers, `${configPath}.output_layers`),
  };
  if (typeof cfg.name === 'string') model.name = cfg.name;
  if (typeof cfg.trainable === 'boolean') model.trainable = cfg.trainable;
  return model;
}

function isRefTuple(v: unknown): v is [string, number, number, ...unknown[]] {
  return Array.isArray(v) && v.length >= 3 && typeof v[0] === 'string' && Number.isInteger(v[1]) && Number.isInteger(v[2]);
}

function refOf(v: unknown, path: string): KRef {
  if (isRefTuple(v)) return { layer: v[0], node: v[1], tensor: v[2], path };
  if (isObject(v) && v.class_name === '__keras_tensor__' && isObject(v.config) && isRefTuple(v.config.keras_history)) {
    const h = v.config.keras_history;
    return { layer: h[0], node: h[1], tensor: h[2], path };
  }
  fail(path, `expected a tensor reference ["layer_name", node_index, tensor_index] (got ${show(v)})`);
}

/** input_layers / output_layers: a list of [name, node, tensor], or (Keras 3, one tensor) a single one. */
function readRefList(v: unknown, path: string): KRef[] {
  if (isRefTuple(v)) return [refOf(v, path)];
  if (Array.isArray(v) && v.length > 0) return v.map((x, i) => refOf(x, `${path}[${i}]`));
  if (isObject(v)) {
    // Keras 3 may write a dict of named inputs/outputs.
    const entries = Object.entries(v);
    if (entries.length > 0) return entries.map(([k, x]) => refOf(x, `${path}.${k}`));
  }
  fail(path, `must list the model's tensors as ["layer_name", node_index, tensor_index] (got ${show(v)})`);
}

const isKerasTensor = (v: unknown) => isObject(v) && v.class_name === '__keras_tensor__';

/** Every tensor in a (nested) structure of call arguments, in order. */
function collectTensors(v: unknown, path: string, out: KRef[], keras2: boolean): void {
  if (isKerasTensor(v)) out.push(refOf(v, path));
  else if (keras2 && isRefTuple(v)) out.push(refOf(v, path));
  else if (Array.isArray(v)) v.forEach((x, i) => collectTensors(x, `${path}[${i}]`, out, keras2));
  else if (isObject(v)) for (const [k, x] of Object.entries(v)) collectTensors(x, `${path}.${k}`, out, keras2);
}

function readKwargs(raw: unknown, path: string, node: KNode, keras2: boolean): void {
  if (raw === undefined || raw === null) return;
  if (!isObject(raw)) fail(path, `call keyword arguments must be an object (got ${show(raw)})`);
  for (const [k, v] of Object.entries(raw)) {
    const kp = `${path}.${k}`;
    const tensors: KRef[] = [];
    collectTensors(v, kp, tensors, keras2);
    if (tensors.length === 1 && (isKerasTensor(v) || isRefTuple(v))) node.tensorKwargs[k] = tensors[0];
    else if (tensors.length > 0) fail(kp, `keyword argument "${k}" passes ${tensors.length} tensors; only single tensors are supported`);
    else if (k === 'training' || v === null || v === undefined) continue;
    else node.kwargs[k] = v;
  }
}

/** One inbound node in any of the three shapes. */
function readNode(raw: unknown, path: string): KNode {
  const node: KNode = { inputs: [], tensorKwargs: {}, kwargs: {}, path };
  if (isObject(raw) && ('args' in raw || 'kwargs' in raw)) {
    // Keras 3: {"args": [...], "kwargs": {...}}
    collectTensors(raw.args ?? [], `${path}.args`, node.inputs, false);
    readKwargs(raw.kwargs, `${path}.kwargs`, node, false);
    return node;
  }
  if (isRefTuple(raw)) {
    // keras_metadata: a node that is a single reference
    node.inputs.push(refOf(raw, path));
    if (isObject(raw[3])) readKwargs(raw[3], `${path}[3]`, node, true);
    return node;
  }
  if (Array.isArray(raw)) {
    // Keras 2 / tfjs: [["layer", node, tensor, {kwargs}], ...]
    raw.forEach((entry, j) => {
      const ep = `${path}[${j}]`;
      node.inputs.push(refOf(entry, ep));
      const kw = (entry as unknown[])[3];
      if (kw !== undefined && j === 0) readKwargs(kw, `${ep}[3]`, node, true);
      else if (isObject(kw) && Object.keys(kw).length > 0) readKwargs(kw, `${ep}[3]`, node, true);
    });
    return node;
  }
  fail(path, `an inbound node must be a list of ["layer_name", node_index, tensor_index, {kwargs}] or {"args": [...], "kwargs": {...}} (got ${show(raw)})`);
}

function refuseClass(cls: string, name: string | undefined, path: string): never {
  const who = name ? `layer "${name}"` : 'this layer';
  if (PYTHON_CODE_LAYERS.has(cls)) {
    fail(
      `${path}.class_name`,
      `${who} is a ${cls}: it holds Python code, which cannot run here. Write it as a Custom expression layer instead: ` +
        '{"class_name": "Custom", "config": {"name": ..., "call": "..."}} (e.g. "call": "inputs * 2"); see docs/expressions.md',
    );
  }
  fail(
    `${path}.class_name`,
    `${who} has class "${cls}", which is not a Keras layer this service knows (a custom Python class cannot be loaded). ` +
      'Write it as a Custom expression layer instead: {"class_name": "Custom", "config": {"name": ..., "weights": {...}, "call": "..."}} ' +
      '(docs/expressions.md); the layers known are listed in docs/layers.md',
  );
}

/** Hook for the builder: whether a class name is a layer the registry knows. Set by build-keras.ts. */
let knownLayer: (cls: string) => boolean = () => true;
export function setLayerLookup(fn: (cls: string) => boolean): void {
  knownLayer = fn;
}

function readLayer(raw: unknown, path: string, flavour: KerasFlavour, depth: number, functional: boolean): KLayer {
  if (!isObject(raw)) fail(path, 'a layer must be an object {"class_name": ..., "config": {...}}');
  const cls = raw.class_name;
  if (typeof cls !== 'string') fail(`${path}.class_name`, 'class_name is required: the Keras layer class, such as "Dense"');
  const configPath = `${path}.config`;
  const cfg = raw.config;
  const name = typeof raw.name === 'string' ? raw.name : isObject(cfg) && typeof cfg.name === 'string' ? cfg.name : undefined;
  const nodes: KNode[] = [];
  if (functional) {
    const inbound = raw.inbound_nodes ?? [];
    if (!Array.isArray(inbound)) fail(`${path}.inbound_nodes`, 'inbound_nodes must be a list of the layer\'s calls');
    inbound.forEach((n, i) => nodes.push(readNode(n, `${path}.inbound_nodes[${i}]`)));
    if (name === undefined) fail(`${path}.name`, 'each layer of a Functional model needs a "name"');
  }

  if (MODEL_CLASSES[cls]) {
    const model = readModel(raw, path, flavour, depth + 1);
    const layerName = name ?? model.name;
    if (layerName === undefined) fail(`${configPath}.name`, 'a nested model needs a "name"');
    return { className: cls, name: layerName, path, configPath, args: {}, model, nodes };
  }
  if (!isObject(cfg)) fail(configPath, `the config of a ${cls} layer must be an object`);
  if (!knownLayer(cls) && cls !== 'InputLayer') refuseClass(cls, name, path);

  const args: Rec = {};
  let inner: KLayer | undefined;
  for (const [key, value] of Object.entries(cfg)) {
    if (key === 'name') continue;
    if (key === 'layer' && (cls === 'Bidirectional' || cls === 'TimeDistributed')) {
      inner = readLayer(value, `${configPath}.layer`, flavour, depth + 1, false);
      continue;
    }
    if (NEUTRAL_WHEN_EMPTY.has(key) && (value === null || value === false || value === undefined)) continue;
    if (IMPLEMENTATION_KEYS.has(key) && cls !== 'BatchNormalization') continue;
    let v = plain(value);
    if (key === 'dtype') {
      v = dtypeName(v);
      if (cls !== 'InputLayer' && typeof v === 'string' && FLOAT_DTYPES.has(v)) v = 'float32';
      if (v === null) continue;
    }
    if (key === 'batch_shape') {
      if (!('batch_input_shape' in cfg)) args.batch_input_shape = v;
      continue;
    }
    args[key] = v;
  }
  // Keras < 2.1 wrote GRU without reset_after: it was false then (the TF2 default, true, came later).
  if (cls === 'GRU' && !('reset_after' in args)) args.reset_after = false;
  if (inner && cls === 'Bidirectional' && inner.className === 'GRU' && !('reset_after' in inner.args)) inner.args.reset_after = false;
  if (cls === 'InputLayer') {
    // Keras 3's "optional": false changes nothing; input_tensor is never serialised with a value.
    if (args.optional === false) delete args.optional;
  }
  if ((cls === 'Bidirectional' || cls === 'TimeDistributed') && !inner) fail(`${configPath}.layer`, `${cls} needs "layer": the layer it wraps`);
  return { className: cls, name: name ?? '', path, configPath, args, inner, nodes };
}
