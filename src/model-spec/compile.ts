/**
 * The `compile` object ({optimizer, loss, loss_weights, metrics}) validated and
 * normalised against a model's outputs, with Keras 2's rules for single vs.
 * per-output losses and metrics and for resolving "accuracy".
 */
import { SpecError } from '../errors.ts';
import { compileExpression } from '../expressions/evaluate.ts';
import { checkLossExpression, LOSS_NAMES, trialLossExpression } from '../expressions/expression-loss.ts';
import { ExpressionError, expressionSpecError } from '../expressions/parser.ts';
import { canonicalLossName, LOSS_SPECS, type ParamSpec } from './losses.ts';
import { canonicalMetricName, isUnsupportedMetric, METRIC_SPECS } from './metrics.ts';
import { OPTIMIZER_PARAM_ALIASES, OPTIMIZER_SPECS, SCHEDULE_SPECS, scheduleValue } from './optimizers.ts';
import type { CompiledConfig, LossConfig, MetricConfig, OptimizerConfig, ScheduleConfig, TensorInfo } from './types.ts';

type Json = Record<string, unknown>;

function fail(path: string, message: string): never {
  throw new SpecError(path, message, 'COMPILE_INVALID');
}

function isPlainObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** "learningRate" -> "learning_rate", "beta1" stays, "AUC" -> "auc". */
export function toSnake(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

function describe(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

/** A path segment for a key: `.name` when it is an identifier, else `["na me"]`. */
function keyPath(base: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`;
}

function checkParam(path: string, value: unknown, spec: ParamSpec | { kind: 'number' | 'boolean'; min?: number; max?: number; gt?: number; lt?: number; only?: boolean; describe: string }): number | boolean {
  if (spec.kind === 'boolean') {
    if (typeof value !== 'boolean') fail(path, `must be ${spec.describe}, got ${describe(value)}`);
    if ('only' in spec && spec.only !== undefined && value !== spec.only) fail(path, `must be ${spec.describe}, got ${describe(value)}`);
    return value;
  }
  const s = spec as { min?: number; max?: number; gt?: number; lt?: number; describe: string };
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (s.min === undefined || value >= s.min) &&
    (s.max === undefined || value <= s.max) &&
    (s.gt === undefined || value > s.gt) &&
    (s.lt === undefined || value < s.lt);
  if (!ok) fail(path, `must be ${s.describe}, got ${describe(value)}`);
  return value as number;
}

// ---------------------------------------------------------------- optimizer

/** Keys Keras writes into optimizer configs that change nothing at their neutral value. */
const NEUTRAL_OPTIMIZER_KEYS = new Set([
  'decay', 'weight_decay', 'clipnorm', 'clipvalue', 'global_clipnorm', 'use_ema', 'loss_scale_factor', 'gradient_accumulation_steps',
]);
const IGNORED_OPTIMIZER_KEYS = new Set(['jit_compile', 'is_legacy_optimizer', 'ema_momentum', 'ema_overwrite_frequency']);

function resolveOptimizer(value: unknown, path: string): OptimizerConfig {
  const names = Object.keys(OPTIMIZER_SPECS);
  let type: unknown;
  let raw: Json = {};
  let typeKey = 'type';
  if (typeof value === 'string') {
    type = value;
  } else if (isPlainObject(value)) {
    if ('class_name' in value) {
      // Keras's serialised form: {"class_name": "Adam", "config": {...}}.
      type = value.class_name;
      typeKey = 'class_name';
      if (value.config !== undefined && !isPlainObject(value.config)) fail(`${path}.config`, 'must be an object');
      raw = (value.config as Json | undefined) ?? {};
    } else {
      typeKey = 'type' in value ? 'type' : 'name';
      type = value[typeKey];
      raw = Object.fromEntries(Object.entries(value).filter(([k]) => k !== typeKey && !(k === 'name' && typeKey === 'type')));
    }
  } else {
    fail(path, `must be an optimizer name (${names.join(', ')}) or an object like {"type": "adam", "learning_rate": 0.001}, got ${describe(value)}`);
  }
  const typePath = typeof value === 'string' ? path : `${path}.${typeKey}`;
  if (typeof type !== 'string') fail(typePath, `must name an optimizer, one of ${names.join(', ')}`);
  const canonical = type.toLowerCase();
  const spec = OPTIMIZER_SPECS[canonical];
  if (!spec) fail(typePath, `unknown optimizer "${type}"; expected one of ${names.join(', ')}`);

  const params: Record<string, number | boolean> = { ...spec.defaults };
  const seen = new Map<string, string>();
  let schedule: ScheduleConfig | undefined;
  for (const [key, v] of Object.entries(raw)) {
    const snake = toSnake(key);
    const name = OPTIMIZER_PARAM_ALIASES[snake] ?? snake;
    const pPath = `${path}.${key}`;
    if (name === 'name' || IGNORED_OPTIMIZER_KEYS.has(name)) continue;
    if (name === 'learning_rate' && isPlainObject(v)) {
      if (seen.has(name)) fail(pPath, `"${key}" repeats "${seen.get(name)}"`);
      seen.set(name, key);
      schedule = resolveSchedule(v, pPath);
      params.learning_rate = scheduleValue(schedule, 0);
      continue;
    }
    if (NEUTRAL_OPTIMIZER_KEYS.has(name) && !spec.params[name]) {
      if (v === null || v === 0 || v === false) continue;
      fail(pPath, `${key} is not supported; leave it out (or set it to null, 0 or false)`);
    }
    const pSpec = spec.params[name];
    if (!pSpec) fail(pPath, `unknown parameter "${key}" for optimizer ${canonical}; accepted: ${Object.keys(spec.params).join(', ')}`);
    if (seen.has(name)) fail(pPath, `"${key}" repeats "${seen.get(name)}"`);
    seen.set(name, key);
    params[name] = checkParam(pPath, v, pSpec);
  }
  return schedule ? { type: canonical, params, schedule } : { type: canonical, params };
}

/**
 * A learning-rate schedule: Keras's {"class_name": "ExponentialDecay", "config": {...}} (Keras 3's
 * module / registered_name keys ignored) or the native {"type": "exponential_decay", ...params}.
 */
function resolveSchedule(value: Json, path: string): ScheduleConfig {
  const names = Object.entries(SCHEDULE_SPECS).map(([k, v]) => `${k} (${v.className})`).join(', ');
  let kind: unknown;
  let raw: Json;
  let rawPath: string;
  let kindPath: string;
  if ('class_name' in value) {
    kind = value.class_name;
    kindPath = `${path}.class_name`;
    if (value.config !== undefined && !isPlainObject(value.config)) fail(`${path}.config`, 'must be an object');
    raw = (value.config as Json | undefined) ?? {};
    rawPath = `${path}.config`;
  } else {
    kind = value.type;
    kindPath = `${path}.type`;
    raw = Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'type'));
    rawPath = path;
  }
  const type = typeof kind === 'string'
    ? (Object.keys(SCHEDULE_SPECS) as Array<ScheduleConfig['type']>).find((k) => k === toSnake(kind as string) || SCHEDULE_SPECS[k].className.toLowerCase() === (kind as string).toLowerCase())
    : undefined;
  if (!type) fail(kindPath, `unknown learning-rate schedule ${describe(kind)}; expected one of ${names}`);
  const spec = SCHEDULE_SPECS[type];
  const params: ScheduleConfig['params'] = {};
  for (const [k, p] of Object.entries(spec.params)) params[k] = p.default;
  for (const [key, v] of Object.entries(raw)) {
    const k = toSnake(key);
    const kp = `${rawPath}.${key}`;
    if (k === 'name' || k === 'module' || k === 'registered_name') continue;
    const p = spec.params[k];
    if (!p) fail(kp, `unknown parameter "${key}" for ${type}; accepted: ${Object.keys(spec.params).join(', ')}`);
    if (v === null && p.default === null && k === 'warmup_target') continue;
    if (p.kind === 'boolean') {
      if (typeof v !== 'boolean') fail(kp, `must be ${p.describe}, got ${describe(v)}`);
      params[k] = v;
    } else if (p.kind === 'numbers') {
      if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) fail(kp, `must be ${p.describe}, got ${describe(v)}`);
      params[k] = [...v] as number[];
    } else {
      if (typeof v !== 'number' || !Number.isFinite(v) || (p.check && !p.check(v))) fail(kp, `must be ${p.describe}, got ${describe(v)}`);
      params[k] = v;
    }
  }
  for (const [k, p] of Object.entries(spec.params)) {
    if (params[k] === null && k !== 'warmup_target') fail(`${rawPath}.${k}`, `is required for ${type}`);
    void p;
  }
  if (type === 'piecewise_constant') {
    const b = params.boundaries as number[];
    const vals = params.values as number[];
    if (vals.length !== b.length + 1) fail(`${rawPath}.values`, `must have one more value than boundaries (${b.length + 1}), got ${vals.length}`);
    if (!b.every((x, i) => i === 0 || x > b[i - 1]!)) fail(`${rawPath}.boundaries`, 'must be increasing');
    if (!vals.every((x) => x >= 0)) fail(`${rawPath}.values`, 'learning rates must be >= 0');
  }
  return { type, params };
}

// ---------------------------------------------------------------- losses

/** Params of an object-form loss or metric: camelCase accepted, "name" and Keras's neutral keys skipped. */
function readParams(
  raw: Json,
  accepted: Record<string, ParamSpec>,
  path: string,
  what: string,
  skip: (key: string, value: unknown, path: string) => boolean,
): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(accepted)) params[name] = spec.default;
  for (const [key, v] of Object.entries(raw)) {
    const snake = toSnake(key);
    const pPath = `${path}.${key}`;
    if (skip(snake, v, pPath)) continue;
    const spec = accepted[snake];
    if (!spec) {
      const list = Object.keys(accepted);
      fail(pPath, `unknown parameter "${key}" for ${what}; ${list.length ? `accepted: ${list.join(', ')}` : 'it takes none'}`);
    }
    const value = checkParam(pPath, v, spec);
    if (snake === 'k' && !Number.isInteger(value)) fail(pPath, `must be a positive integer, got ${describe(v)}`);
    params[snake] = value;
  }
  return params;
}

/** {"type": ...}, {"name": ...} or Keras's {"class_name": ..., "config": {...}}: the name, where it sits, and the other keys. */
function splitTyped(value: Json, path: string): { type: unknown; typePath: string; raw: Json; rawPath: string } {
  if ('class_name' in value) {
    if (value.config !== undefined && !isPlainObject(value.config)) fail(`${path}.config`, 'must be an object');
    return { type: value.class_name, typePath: `${path}.class_name`, raw: (value.config as Json | undefined) ?? {}, rawPath: `${path}.config` };
  }
  const typeKey = 'type' in value ? 'type' : 'name';
  const raw = Object.fromEntries(Object.entries(value).filter(([k]) => k !== typeKey));
  return { type: value[typeKey], typePath: `${path}.${typeKey}`, raw, rawPath: path };
}

function lossNames(): string {
  return Object.keys(LOSS_SPECS).join(', ');
}

/** A SpecError (EXPRESSION_INVALID) at `path` for an expression problem; anything else is rethrown. */
function expressionFail(path: string, err: unknown, suffix = ''): never {
  if (!(err instanceof ExpressionError)) throw err;
  throw expressionSpecError(err, path, `${err.message}${suffix}`);
}

/** {"expression": "mean(square(y_true - y_pred))"}: a custom loss, checked on each output it applies to. */
function resolveExpressionLoss(value: Json, path: string, outputs: TensorInfo[]): LossConfig {
  for (const key of Object.keys(value)) {
    if (key !== 'expression' && key !== 'name') fail(`${path}.${key}`, `unknown key "${key}" for an expression loss; accepted: expression, name`);
  }
  if (value.name !== undefined && typeof value.name !== 'string') fail(`${path}.name`, `must be a string, got ${describe(value.name)}`);
  for (const o of outputs) {
    try {
      checkLossExpression(value.expression, o.shape, true, 'the loss expression');
    } catch (err) {
      expressionFail(`${path}.expression`, err, outputs.length > 1 ? ` (output "${o.name}")` : '');
    }
  }
  return { name: 'expression', params: {}, expression: value.expression as string };
}

function resolveLoss(value: unknown, path: string, outputs: TensorInfo[]): LossConfig {
  if (isPlainObject(value) && 'expression' in value) return resolveExpressionLoss(value, path, outputs);
  let type: unknown = value;
  let typePath = path;
  let raw: Json = {};
  let rawPath = path;
  if (isPlainObject(value)) ({ type, typePath, raw, rawPath } = splitTyped(value, path));
  else if (typeof value !== 'string') fail(path, `must be a loss name (${lossNames()}) or an object like {"type": "huber", "delta": 1}, got ${describe(value)}`);
  if (typeof type !== 'string') fail(typePath, `must name a loss, one of ${lossNames()}`);
  const name = canonicalLossName(type);
  if (!name) fail(typePath, `unknown loss "${type}"; expected one of ${lossNames()} (or their aliases mse, mae, mape, msle, kld, huber_loss, logcosh)`);
  const params = readParams(raw, LOSS_SPECS[name]!.params, rawPath, `loss ${name}`, (key, v, pPath) => {
    if (key === 'name') return true;
    if (key === 'reduction') {
      if (v === 'auto' || v === 'sum_over_batch_size') return true;
      fail(pPath, `only "auto" / "sum_over_batch_size" reduction is supported, got ${describe(v)}`);
    }
    if (key === 'axis') {
      if (v === -1) return true;
      fail(pPath, `only axis -1 is supported, got ${describe(v)}`);
    }
    return false;
  });
  return { name, params };
}

function outputList(outputs: TensorInfo[]): string {
  return outputs.map((o) => JSON.stringify(o.name)).join(', ');
}

/** True for a loss/metric given as one object ({"type": ...}) rather than an object keyed by output name. */
function isTypedObject(value: Json, outputs: TensorInfo[]): boolean {
  const keys = Object.keys(value);
  const allOutputs = keys.length > 0 && keys.every((k) => outputs.some((o) => o.name === k));
  return !allOutputs && ('type' in value || 'class_name' in value || 'expression' in value || ('name' in value && typeof value.name === 'string'));
}

function resolveLosses(value: unknown, outputs: TensorInfo[], path: string): LossConfig[] {
  if (value === undefined || value === null) fail(path, `is required: a loss name (${lossNames()}), a list with one per output, or an object keyed by output name`);
  if (Array.isArray(value)) {
    if (value.length !== outputs.length) {
      fail(path, `has ${value.length} losses but the model has ${outputs.length} output(s) (${outputList(outputs)}); give one per output`);
    }
    return value.map((v, i) => resolveLoss(v, `${path}[${i}]`, [outputs[i]!]));
  }
  if (isPlainObject(value) && !isTypedObject(value, outputs)) {
    for (const key of Object.keys(value)) {
      if (!outputs.some((o) => o.name === key)) fail(keyPath(path, key), `"${key}" is not an output of the model; outputs: ${outputList(outputs)}`);
    }
    return outputs.map((o) => {
      if (!(o.name in value) || value[o.name] === null) fail(path, `no loss for output "${o.name}"; every output needs one`);
      return resolveLoss(value[o.name], keyPath(path, o.name), [o]);
    });
  }
  // One loss for every output, as Keras does.
  const loss = resolveLoss(value, path, outputs);
  return outputs.map(() => ({ ...loss, params: { ...loss.params } }));
}

// ---------------------------------------------------------------- loss weights

function checkWeight(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(path, `must be a number >= 0, got ${describe(v)}`);
  return v;
}

function resolveLossWeights(value: unknown, outputs: TensorInfo[], path: string): number[] {
  if (value === undefined || value === null) return outputs.map(() => 1);
  if (typeof value === 'number' && outputs.length === 1) return [checkWeight(value, path)];
  if (Array.isArray(value)) {
    if (value.length !== outputs.length) {
      fail(path, `has ${value.length} weights but the model has ${outputs.length} output(s) (${outputList(outputs)}); give one per output`);
    }
    return value.map((v, i) => checkWeight(v, `${path}[${i}]`));
  }
  if (isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      if (!outputs.some((o) => o.name === key)) fail(keyPath(path, key), `"${key}" is not an output of the model; outputs: ${outputList(outputs)}`);
    }
    // Keras weighs an output left out of the object by 1.
    return outputs.map((o) => (o.name in value ? checkWeight(value[o.name], keyPath(path, o.name)) : 1));
  }
  fail(path, `must be a list of numbers (one per output) or an object keyed by output name, got ${describe(value)}`);
}

// ---------------------------------------------------------------- metrics

function metricNames(): string {
  return Object.keys(METRIC_SPECS).join(', ');
}

/** Keras's _get_metric_object: "accuracy" and "crossentropy" depend on the output's loss and shape. */
function resolveAccuracyLike(name: 'accuracy' | 'crossentropy', output: TensorInfo, loss: LossConfig): { fn: string; params: Record<string, unknown> } {
  const lastDim = output.shape.length ? output.shape[output.shape.length - 1] : 1;
  const binary = loss.name === 'binary_crossentropy' || lastDim === 1;
  const sparse = loss.name === 'sparse_categorical_crossentropy';
  if (name === 'accuracy') {
    if (binary) return { fn: 'binary_accuracy', params: { threshold: 0.5 } };
    if (sparse) return { fn: 'sparse_categorical_accuracy', params: {} };
    return { fn: 'categorical_accuracy', params: {} };
  }
  const fn = binary ? 'binary_crossentropy' : sparse ? 'sparse_categorical_crossentropy' : 'categorical_crossentropy';
  const params: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(LOSS_SPECS[fn]!.params)) params[k] = spec.default;
  return { fn, params };
}

/** {"name": "rmse", "expression": "sqrt(mean(square(y_true - y_pred)))"}: a custom metric, reported under its name. */
function resolveExpressionMetric(value: Json, output: TensorInfo, path: string): MetricConfig {
  for (const key of Object.keys(value)) {
    if (key !== 'expression' && key !== 'name') fail(`${path}.${key}`, `unknown key "${key}" for an expression metric; accepted: name, expression`);
  }
  const name = value.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.\-]{1,64}$/.test(name)) {
    fail(`${path}.name`, `an expression metric needs a "name" (the history key) of letters, digits, "_", "-" or ".", got ${describe(name)}`);
  }
  try {
    checkLossExpression(value.expression, output.shape, false, `metric "${name}"`);
  } catch (err) {
    expressionFail(`${path}.expression`, err);
  }
  return { key: name, fn: 'expression', params: {}, expression: value.expression as string };
}

function resolveMetric(value: unknown, output: TensorInfo, loss: LossConfig, path: string): MetricConfig {
  if (isPlainObject(value) && 'expression' in value) return resolveExpressionMetric(value, output, path);
  let type: unknown = value;
  let typePath = path;
  let raw: Json = {};
  let rawPath = path;
  let key: string | undefined;
  if (isPlainObject(value)) {
    ({ type, typePath, raw, rawPath } = splitTyped(value, path));
    // {"type": ..., "name": "top3"}: the name is the history key.
    if (typePath.endsWith('.type') || typePath.endsWith('.class_name')) {
      const named = typePath.endsWith('.type') ? value.name : (value.config as Json | undefined)?.name;
      if (named !== undefined) {
        if (typeof named !== 'string' || !/^[A-Za-z0-9_.\-]+$/.test(named)) fail(`${rawPath}.name`, `must be a metric name of letters, digits, "_", "-" or ".", got ${describe(named)}`);
        key = named;
      }
    }
  } else if (typeof value !== 'string') {
    fail(path, `must be a metric name (${metricNames()}) or an object like {"type": "top_k_categorical_accuracy", "k": 3}, got ${describe(value)}`);
  }
  if (typeof type !== 'string') fail(typePath, `must name a metric, one of ${metricNames()}`);
  const confusionKind = CONFUSION_METRICS[nameKeyOf(type)];
  if (confusionKind) return resolveConfusionMetric(confusionKind, key ?? (nameKeyOf(type) === 'auc' ? 'auc' : toSnake(type)), raw, rawPath);
  if (isUnsupportedMetric(type)) fail(typePath, `metric "${type}" is not supported yet; supported: accuracy-type, loss-type, precision, recall and auc metrics`);
  const canonical = canonicalMetricName(type);
  if (!canonical) fail(typePath, `unknown metric "${type}"; expected one of ${metricNames()}`);
  // Keras keeps the name as written ("acc" stays "acc"); tfjs camelCase becomes snake_case.
  key ??= toSnake(type);
  const accepted = canonical === 'accuracy' || canonical === 'crossentropy' ? {} : METRIC_SPECS[canonical]!.params;
  const params = readParams(raw, accepted, rawPath, `metric ${canonical}`, (k) => k === 'name' || k === 'dtype');
  if (canonical === 'accuracy' || canonical === 'crossentropy') {
    const resolved = resolveAccuracyLike(canonical, output, loss);
    return { key, fn: resolved.fn, params: resolved.params };
  }
  return { key, fn: canonical, params };
}

const nameKeyOf = (name: string) => name.toLowerCase().replace(/_/g, '');

/** Keras's confusion-matrix metrics, computed from counts summed over the epoch (stateful-metrics.ts). */
const CONFUSION_METRICS: Record<string, 'precision' | 'recall' | 'auc'> = { precision: 'precision', recall: 'recall', auc: 'auc' };

function resolveConfusionMetric(fn: 'precision' | 'recall' | 'auc', key: string, raw: Json, path: string): MetricConfig {
  const params: Record<string, unknown> = fn === 'auc'
    ? { num_thresholds: 200, curve: 'ROC', summation_method: 'interpolation', from_logits: false }
    : { thresholds: null, top_k: null, class_id: null };
  for (const [k, v] of Object.entries(raw)) {
    const name = toSnake(k);
    const at = `${path}.${k}`;
    if (name === 'name' || name === 'dtype') continue;
    if (fn !== 'auc' && name === 'thresholds') {
      const list = typeof v === 'number' ? [v] : v;
      if (v !== null && (!Array.isArray(list) || list.length === 0 || list.length > 200 || !list.every((t) => typeof t === 'number' && t >= 0 && t <= 1))) {
        fail(at, `must be a number in [0, 1] or a list of them, got ${describe(v)}`);
      }
      params.thresholds = v === null ? null : list;
    } else if (fn !== 'auc' && (name === 'top_k' || name === 'class_id')) {
      const min = name === 'top_k' ? 1 : 0;
      if (v !== null && !(Number.isInteger(v) && (v as number) >= min)) fail(at, `must be an integer >= ${min} or null, got ${describe(v)}`);
      params[name] = v;
    } else if (fn === 'auc' && name === 'num_thresholds') {
      if (!(Number.isInteger(v) && (v as number) > 1 && (v as number) <= 10_000)) fail(at, `must be an integer from 2 to 10000, got ${describe(v)}`);
      params.num_thresholds = v;
    } else if (fn === 'auc' && name === 'curve') {
      if (v !== 'ROC' && v !== 'PR') fail(at, `must be "ROC" or "PR", got ${describe(v)}`);
      params.curve = v;
    } else if (fn === 'auc' && name === 'summation_method') {
      if (!['interpolation', 'minoring', 'majoring'].includes(v as string)) fail(at, `must be "interpolation", "minoring" or "majoring", got ${describe(v)}`);
      params.summation_method = v;
    } else if (fn === 'auc' && name === 'from_logits') {
      if (typeof v !== 'boolean') fail(at, `must be true or false, got ${describe(v)}`);
      params.from_logits = v;
    } else if (fn === 'auc' && ['multi_label', 'thresholds', 'label_weights', 'num_labels'].includes(name)) {
      if (v !== null && v !== false) fail(at, `${name} is not supported; leave it out (or null / false)`);
    } else {
      const accepted = fn === 'auc' ? 'num_thresholds, curve, summation_method, from_logits' : 'thresholds, top_k, class_id';
      fail(at, `unknown parameter "${k}" for metric ${fn}; accepted: ${accepted}`);
    }
  }
  return { key, fn, params };
}

function resolveMetricList(value: unknown, output: TensorInfo, loss: LossConfig, path: string): MetricConfig[] {
  const items = Array.isArray(value) ? value.map((v, i) => ({ v, p: `${path}[${i}]` })) : [{ v: value, p: path }];
  const result: MetricConfig[] = [];
  for (const { v, p } of items) {
    const m = resolveMetric(v, output, loss, p);
    if (result.some((r) => r.key === m.key)) fail(p, `metric "${m.key}" is listed twice for output "${output.name}"; give one a different "name"`);
    result.push(m);
  }
  return result;
}

function resolveMetrics(value: unknown, outputs: TensorInfo[], losses: LossConfig[], path: string): MetricConfig[][] {
  if (value === undefined || value === null) return outputs.map(() => []);
  if (isPlainObject(value) && !isTypedObject(value, outputs)) {
    for (const key of Object.keys(value)) {
      if (!outputs.some((o) => o.name === key)) fail(keyPath(path, key), `"${key}" is not an output of the model; outputs: ${outputList(outputs)}`);
    }
    return outputs.map((o, i) =>
      o.name in value && value[o.name] !== null ? resolveMetricList(value[o.name], o, losses[i]!, keyPath(path, o.name)) : [],
    );
  }
  if (!Array.isArray(value) && typeof value !== 'string' && !isPlainObject(value)) {
    fail(path, `must be a list of metrics (applied to every output) or an object keyed by output name, got ${describe(value)}`);
  }
  // A list applies to every output (Keras); a lone name or metric object is taken as a one-item list.
  return outputs.map((o, i) => resolveMetricList(value, o, losses[i]!, path));
}

// ---------------------------------------------------------------- compile

const COMPILE_KEYS: Record<string, string> = {
  optimizer: 'optimizer',
  loss: 'loss',
  loss_weights: 'loss_weights',
  lossWeights: 'loss_weights',
  metrics: 'metrics',
};

/**
 * Validates a compile object ({optimizer, loss, loss_weights, metrics}) against the model
 * outputs and normalises it (output order, Keras defaults, aliases resolved).
 * Throws SpecError(path like "compile.loss[1]", message, 'COMPILE_INVALID').
 */
export function resolveCompile(compile: unknown, outputs: TensorInfo[], pathPrefix = 'compile'): CompiledConfig {
  if (!isPlainObject(compile)) {
    fail(pathPrefix, `must be an object like {"optimizer": "adam", "loss": "mse", "metrics": ["mae"]}, got ${describe(compile)}`);
  }
  if (outputs.length === 0) fail(pathPrefix, 'the model has no outputs to compile');
  const given: Record<string, { value: unknown; path: string }> = {};
  for (const [key, value] of Object.entries(compile)) {
    const canonical = COMPILE_KEYS[key];
    if (!canonical) fail(keyPath(pathPrefix, key), `unknown compile option "${key}"; accepted: optimizer, loss, loss_weights, metrics`);
    if (given[canonical]) fail(keyPath(pathPrefix, key), `"${key}" repeats "${canonical}"`);
    given[canonical] = { value, path: `${pathPrefix}.${key}` };
  }
  // Keras's compile() default optimizer.
  const optimizer = resolveOptimizer(given.optimizer?.value ?? 'rmsprop', given.optimizer?.path ?? `${pathPrefix}.optimizer`);
  const losses = resolveLosses(given.loss?.value, outputs, given.loss?.path ?? `${pathPrefix}.loss`);
  const lossWeights = resolveLossWeights(given.loss_weights?.value, outputs, given.loss_weights?.path ?? `${pathPrefix}.loss_weights`);
  const metrics = resolveMetrics(given.metrics?.value, outputs, losses, given.metrics?.path ?? `${pathPrefix}.metrics`);
  // With several outputs the history keys are "<out>_<metric>" and "<out>_loss": they must not collide.
  if (outputs.length > 1) {
    const keys = new Set<string>(['loss']);
    outputs.forEach((o, i) => {
      for (const k of [`${o.name}_loss`, ...metrics[i]!.map((m) => `${o.name}_${m.key}`)]) {
        if (keys.has(k)) fail(given.metrics?.path ?? `${pathPrefix}.metrics`, `two metrics would both be reported as "${k}"; rename one with {"type": ..., "name": ...}`);
        keys.add(k);
      }
    });
  } else if (metrics[0]!.some((m) => m.key === 'loss')) {
    fail(given.metrics?.path ?? `${pathPrefix}.metrics`, 'a metric may not be named "loss"');
  }
  return { optimizer, losses, loss_weights: lossWeights, metrics };
}

// ---------------------------------------------------------------- targets

function shapeText(shape: Array<number | null>): string {
  return `[${shape.map((d) => (d === null ? 'null' : String(d))).join(', ')}]`;
}

/** Equal shapes where null matches anything and a trailing 1 may be left out ([] equals [1]). */
function shapesMatch(expected: Array<number | null>, got: number[]): boolean {
  const eq = (a: Array<number | null>, b: number[]) => a.length === b.length && a.every((d, i) => d === null || d === b[i]);
  return eq(expected, got) || eq([...expected, 1], got) || eq(expected, [...got, 1]);
}

/**
 * Checks that a dataset target column's per-sample shape (and its label range, when known)
 * fits output `output` under `loss`. Returns a message saying expected vs. got, or null.
 */
export function checkTargetShape(
  output: TensorInfo,
  loss: LossConfig,
  targetShape: number[],
  targetRange?: { min: number; max: number },
  metrics: MetricConfig[] = [],
): string | null {
  // Expressions are checked by running them on zeros of the real shapes.
  const trials: Array<[string, string, boolean]> = [
    ...(loss.expression !== undefined ? [['the loss expression', loss.expression, true] as [string, string, boolean]] : []),
    ...metrics.filter((m) => m.expression !== undefined).map((m) => [`metric "${m.key}"`, m.expression!, false] as [string, string, boolean]),
  ];
  for (const [what, text, differentiable] of trials) {
    try {
      trialLossExpression(compileExpression(text, LOSS_NAMES), output.shape, targetShape, differentiable, what);
    } catch (err) {
      if (!(err instanceof ExpressionError)) throw err;
      return `${what} does not fit targets of shape ${shapeText(targetShape)} for an output of shape ${shapeText(output.shape)}: ${err.message}`;
    }
  }
  // Precision, recall and AUC compare targets and predictions value by value (binary, one-hot or multi-label).
  const confusion = metrics.find((m) => m.fn === 'precision' || m.fn === 'recall' || m.fn === 'auc');
  if (confusion) {
    const size = (sh: Array<number | null>) => sh.reduce<number>((a, b) => a * (b ?? 1), 1);
    if (size(targetShape) !== size(output.shape)) {
      return `metric "${confusion.key}" needs targets shaped like the output ${shapeText(output.shape)} (binary, one-hot or multi-label), got ${shapeText(targetShape)}; one-hot encode class labels`;
    }
  }
  if (loss.expression !== undefined) return null;
  const name = canonicalLossName(loss.name) ?? loss.name;
  const outShape = output.shape;
  if (name === 'sparse_categorical_crossentropy') {
    const k = outShape.length ? outShape[outShape.length - 1] : undefined;
    if (k === undefined || (k !== null && k < 2)) {
      return `output "${output.name}" has shape ${shapeText(outShape)}; sparse_categorical_crossentropy needs an output of class scores, last dimension >= 2`;
    }
    // Integer labels: one per position of the output without its class axis ([] or [1] for a [k] output).
    const labelShape = outShape.slice(0, -1);
    const fits = shapesMatch([...labelShape, 1], targetShape) || shapesMatch(labelShape, targetShape);
    if (!fits) {
      return `output "${output.name}" with sparse_categorical_crossentropy expects integer class labels of shape ${shapeText(labelShape)} or ${shapeText([...labelShape, 1])} per sample, got ${shapeText(targetShape)}`;
    }
    if (targetRange && k !== null) {
      const { min, max } = targetRange;
      if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max >= k) {
        return `output "${output.name}" has ${k} classes, so sparse_categorical_crossentropy expects integer labels in [0, ${k - 1}], got labels in [${min}, ${max}]`;
      }
    }
    return null;
  }
  if (!shapesMatch(outShape, targetShape)) {
    let hint = '';
    const k = outShape.length ? outShape[outShape.length - 1] : null;
    if (name === 'categorical_crossentropy' && k !== null && k > 1 && shapesMatch([1], targetShape)) {
      hint = ' (for integer class labels use sparse_categorical_crossentropy, or one-hot encode them)';
    }
    return `output "${output.name}" with ${name} expects targets of shape ${shapeText(outShape)} per sample, got ${shapeText(targetShape)}${hint}`;
  }
  return null;
}
