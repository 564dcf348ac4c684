/**
 * Keras optimizers on tfjs: the names, parameters and defaults of Keras 2 (not
 * tfjs's defaults), mapped onto the tfjs optimizer classes.
 */
import * as tf from '@tensorflow/tfjs';
import type { OptimizerConfig, ScheduleConfig } from './types.ts';

export interface OptimizerParamSpec {
  kind: 'number' | 'boolean';
  /** Inclusive bounds. */
  min?: number;
  max?: number;
  /** Strict bounds. */
  gt?: number;
  lt?: number;
  /** The only value accepted (amsgrad: false). */
  only?: boolean;
  describe: string;
}

const LR: OptimizerParamSpec = { kind: 'number', gt: 0, describe: 'a number > 0' };
const BETA: OptimizerParamSpec = { kind: 'number', min: 0, lt: 1, describe: 'a number in [0, 1)' };
const EPS: OptimizerParamSpec = { kind: 'number', gt: 0, describe: 'a number > 0' };
const MOMENTUM: OptimizerParamSpec = { kind: 'number', min: 0, max: 1, describe: 'a number in [0, 1]' };
const BOOL: OptimizerParamSpec = { kind: 'boolean', describe: 'a boolean' };

/** Keras 2 optimizers: accepted parameters (canonical snake_case) with Keras's defaults. */
export const OPTIMIZER_SPECS: Record<string, { defaults: Record<string, number | boolean>; params: Record<string, OptimizerParamSpec> }> = {
  sgd: {
    defaults: { learning_rate: 0.01, momentum: 0, nesterov: false },
    params: { learning_rate: LR, momentum: MOMENTUM, nesterov: BOOL },
  },
  adam: {
    defaults: { learning_rate: 0.001, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false },
    params: {
      learning_rate: LR, beta_1: BETA, beta_2: BETA, epsilon: EPS,
      amsgrad: { kind: 'boolean', only: false, describe: 'false (tfjs has no AMSGrad)' },
    },
  },
  rmsprop: {
    defaults: { learning_rate: 0.001, rho: 0.9, momentum: 0, epsilon: 1e-7, centered: false },
    params: { learning_rate: LR, rho: BETA, momentum: MOMENTUM, epsilon: EPS, centered: BOOL },
  },
  adagrad: {
    defaults: { learning_rate: 0.001, initial_accumulator_value: 0.1, epsilon: 1e-7 },
    params: { learning_rate: LR, initial_accumulator_value: { kind: 'number', min: 0, describe: 'a number >= 0' }, epsilon: EPS },
  },
  adadelta: {
    defaults: { learning_rate: 0.001, rho: 0.95, epsilon: 1e-7 },
    params: { learning_rate: LR, rho: BETA, epsilon: EPS },
  },
  adamax: {
    defaults: { learning_rate: 0.001, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 },
    params: { learning_rate: LR, beta_1: BETA, beta_2: BETA, epsilon: EPS },
  },
  nadam: {
    defaults: { learning_rate: 0.001, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 },
    params: { learning_rate: LR, beta_1: BETA, beta_2: BETA, epsilon: EPS },
  },
  adamw: {
    defaults: { learning_rate: 0.001, weight_decay: 0.004, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false },
    params: {
      learning_rate: LR, weight_decay: { kind: 'number', min: 0, describe: 'a number >= 0' }, beta_1: BETA, beta_2: BETA, epsilon: EPS,
      amsgrad: { kind: 'boolean', only: false, describe: 'false (AMSGrad is not implemented)' },
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Learning-rate schedules (keras.optimizers.schedules), as functions of the step: the number of
// updates applied before this one (optimizer.iterations), as Keras evaluates them.

const NUM = (describe: string, check: (v: number) => boolean) => ({ describe, check });

/** Keras's schedules: parameters (snake_case) with Keras's defaults; null = required. */
export const SCHEDULE_SPECS: Record<ScheduleConfig['type'], {
  className: string;
  params: Record<string, { default: number | boolean | number[] | null; kind: 'number' | 'boolean' | 'numbers'; describe: string; check?: (v: number) => boolean }>;
}> = {
  exponential_decay: {
    className: 'ExponentialDecay',
    params: {
      initial_learning_rate: { default: null, kind: 'number', ...NUM('a number > 0', (v) => v > 0) },
      decay_steps: { default: null, kind: 'number', ...NUM('a number > 0', (v) => v > 0) },
      decay_rate: { default: null, kind: 'number', ...NUM('a number > 0', (v) => v > 0) },
      staircase: { default: false, kind: 'boolean', describe: 'a boolean' },
    },
  },
  cosine_decay: {
    className: 'CosineDecay',
    params: {
      initial_learning_rate: { default: null, kind: 'number', ...NUM('a number >= 0', (v) => v >= 0) },
      decay_steps: { default: null, kind: 'number', ...NUM('a number > 0', (v) => v > 0) },
      alpha: { default: 0, kind: 'number', ...NUM('a number in [0, 1]', (v) => v >= 0 && v <= 1) },
      warmup_target: { default: null, kind: 'number', ...NUM('a number > 0 or null', (v) => v > 0) },
      warmup_steps: { default: 0, kind: 'number', ...NUM('an integer >= 0', (v) => Number.isInteger(v) && v >= 0) },
    },
  },
  piecewise_constant: {
    className: 'PiecewiseConstantDecay',
    params: {
      boundaries: { default: null, kind: 'numbers', describe: 'an increasing list of steps' },
      values: { default: null, kind: 'numbers', describe: 'a list of learning rates, one more than boundaries' },
    },
  },
};

/** The learning rate a schedule gives at `step` (Keras's formulas, evaluated in float64). */
export function scheduleValue(s: ScheduleConfig, step: number): number {
  const p = s.params;
  const n = (k: string) => Number(p[k]);
  switch (s.type) {
    case 'exponential_decay': {
      let t = step / n('decay_steps');
      if (p.staircase === true) t = Math.floor(t);
      return n('initial_learning_rate') * n('decay_rate') ** t;
    }
    case 'cosine_decay': {
      const init = n('initial_learning_rate');
      const warmupSteps = n('warmup_steps') || 0;
      const target = p.warmup_target == null ? null : n('warmup_target');
      const decay = (from: number, t: number) => {
        const done = Math.min(t, n('decay_steps')) / n('decay_steps');
        const cosine = 0.5 * (1 + Math.cos(Math.PI * done));
        return from * ((1 - n('alpha')) * cosine + n('alpha'));
      };
      if (target === null) return decay(init, step);
      if (step < warmupSteps) return init + ((target - init) * step) / warmupSteps;
      return decay(target, step - warmupSteps);
    }
    case 'piecewise_constant': {
      const b = p.boundaries as number[];
      const v = p.values as number[];
      for (let i = 0; i < b.length; i++) if (step <= b[i]) return v[i];
      return v[v.length - 1];
    }
    default:
      throw new Error(`unknown schedule ${(s as ScheduleConfig).type}`);
  }
}

/** Other spellings of parameter names, after camelCase -> snake_case. */
export const OPTIMIZER_PARAM_ALIASES: Record<string, string> = {
  lr: 'learning_rate',
  beta1: 'beta_1',
  beta2: 'beta_2',
  use_nesterov: 'nesterov',
};

/**
 * Adagrad with a configurable epsilon: tfjs's AdagradOptimizer always uses the
 * backend epsilon (1e-7 on float32 backends, Keras's default) and takes none.
 */
class KerasAdagrad extends tf.AdagradOptimizer {
  private readonly eps: number;

  constructor(learningRate: number, initialAccumulatorValue: number, epsilon: number) {
    super(learningRate, initialAccumulatorValue);
    this.eps = epsilon;
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | Array<{ name: string; tensor: tf.Tensor }>): void {
    // The accumulator list is private in tfjs's class; same layout, so state save/restore keeps working.
    const self = this as unknown as { accumulatedGrads: Array<{ originalName: string; variable: tf.Variable }>; initialAccumulatorValue: number };
    const names = Array.isArray(variableGradients) ? variableGradients.map((item) => item.name) : Object.keys(variableGradients);
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name]!;
      if (self.accumulatedGrads[i] == null) {
        self.accumulatedGrads[i] = {
          originalName: `${name}/accumulator`,
          variable: tf.tidy(() => tf.fill(value.shape, self.initialAccumulatorValue).variable(false)),
        };
      }
      const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
      if (gradient == null) return;
      const acc = self.accumulatedGrads[i]!.variable;
      tf.tidy(() => {
        const newAcc = acc.add(gradient.square());
        acc.assign(newAcc);
        value.assign(value.sub(gradient.div(newAcc.add(this.eps).sqrt()).mul(this.learningRate)));
      });
    });
    this.incrementIterations();
  }
}

/** tfjs's MomentumOptimizer.dispose() forgets the learning-rate scalar of its SGD base class: dispose it too. */
class KerasMomentum extends tf.MomentumOptimizer {
  override dispose(): void {
    super.dispose();
    const self = this as unknown as { c?: tf.Tensor };
    if (self.c && !self.c.isDisposed) self.c.dispose();
  }
}

/**
 * RMSprop whose centered update is TensorFlow's (ApplyCenteredRMSProp):
 * mom = momentum mom + lr g / sqrt(ms - mg^2 + eps). tfjs 4.22 computes sqrt(ms - (mg^2 + eps)),
 * which is NaN whenever a gradient stays (near) constant, e.g. 0 for a dead unit.
 */
class KerasRMSprop extends tf.RMSPropOptimizer {
  override applyGradients(variableGradients: tf.NamedTensorMap | Array<{ name: string; tensor: tf.Tensor }>): void {
    const self = this as unknown as {
      centered: boolean;
      accumulatedMeanSquares: Array<{ originalName: string; variable: tf.Variable }>;
      accumulatedMoments: Array<{ originalName: string; variable: tf.Variable }>;
      accumulatedMeanGrads: Array<{ originalName: string; variable: tf.Variable }>;
    };
    // The plain update is right in tfjs; only the centered one is replaced. Same state layout as tfjs's class.
    if (!self.centered) return super.applyGradients(variableGradients as tf.NamedTensorMap);
    const names = Array.isArray(variableGradients) ? variableGradients.map((item) => item.name) : Object.keys(variableGradients);
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name]!;
      const slot = (list: Array<{ originalName: string; variable: tf.Variable }>, suffix: string) =>
        (list[i] ??= { originalName: `${name}/${suffix}`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) }).variable;
      const ms = slot(self.accumulatedMeanSquares, 'rms');
      const mom = slot(self.accumulatedMoments, 'momentum');
      const mg = slot(self.accumulatedMeanGrads, 'mg');
      const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
      if (gradient == null) return;
      tf.tidy(() => {
        const newMs = ms.mul(this.decay).add(gradient.square().mul(1 - this.decay));
        const newMg = mg.mul(this.decay).add(gradient.mul(1 - this.decay));
        const denom = newMs.sub(newMg.square()).maximum(0).add(this.epsilon).sqrt();
        const newMom = mom.mul(this.momentum).add(gradient.mul(this.learningRate).div(denom));
        ms.assign(newMs);
        mg.assign(newMg);
        mom.assign(newMom);
        value.assign(value.sub(newMom));
      });
    });
    this.incrementIterations();
  }
}

// ---------------------------------------------------------------------------------------------
// Nadam and AdamW (tfjs has neither), with Keras 3's update rules.

type Slot = { originalName: string; variable: tf.Variable };
type Grads = tf.NamedTensorMap | Array<{ name: string; tensor: tf.Tensor }>;
type NamedTensor = { name: string; tensor: tf.Tensor };

/**
 * Base of the moment-based optimizers written here: first and second moments per variable
 * (slots kept by position, as tfjs's AdamOptimizer keeps them), the step count in `iterations`.
 * getWeights(): [iterations, ...extra scalars, ...m, ...v], and setWeights() takes the same back,
 * so the worker's checkpoints (optimizer.getWeights() / setWeights()) restore the whole state.
 */
abstract class MomentsOptimizer extends tf.Optimizer {
  protected m: Slot[] = [];
  protected v: Slot[] = [];
  /** Optimizer-wide scalars saved with the state (Nadam's u_product). */
  protected extra: Slot[] = [];

  constructor(public learningRate: number, protected beta1: number, protected beta2: number, protected epsilon: number) {
    super();
  }

  protected abstract update(value: tf.Variable, gradient: tf.Tensor, m: tf.Variable, v: tf.Variable, step: number): void;
  /** Called once per step before the variables are updated. */
  protected beginStep(_step: number): void {}

  override applyGradients(variableGradients: Grads): void {
    const names = Array.isArray(variableGradients) ? variableGradients.map((item) => item.name) : Object.keys(variableGradients);
    const step = this.iterations + 1;
    this.beginStep(step);
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name]!;
      const slot = (list: Slot[], suffix: string) =>
        (list[i] ??= { originalName: `${name}/${suffix}`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) }).variable;
      const m = slot(this.m, 'm');
      const v = slot(this.v, 'v');
      const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
      if (gradient == null) return;
      tf.tidy(() => this.update(value, gradient, m, v, step));
    });
    this.incrementIterations();
  }

  override async getWeights(): Promise<NamedTensor[]> {
    return [await this.saveIterations(), ...[...this.extra, ...this.m, ...this.v].map((s) => ({ name: s.originalName, tensor: s.variable }))];
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    let rest = await this.extractIterations(weightValues);
    const extraNames = this.extra.map((s) => s.originalName);
    for (let k = 0; k < extraNames.length; k++) {
      const w = rest.find((x) => x.name === extraNames[k]);
      if (w) this.extra[k]!.variable.assign(w.tensor);
    }
    rest = rest.filter((x) => !extraNames.includes(x.name));
    this.disposeSlots();
    const count = rest.length / 2;
    const make = (w: NamedTensor) => ({ originalName: w.name, variable: w.tensor.variable(false) });
    this.m = rest.slice(0, count).map(make);
    this.v = rest.slice(count).map(make);
  }

  private disposeSlots(): void {
    for (const s of [...this.m, ...this.v]) s.variable.dispose();
    this.m = [];
    this.v = [];
  }

  override dispose(): void {
    this.disposeSlots();
    for (const s of this.extra) if (!s.variable.isDisposed) s.variable.dispose();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }
}

/**
 * Keras's Nadam (Keras 3 and tf.keras >= 2.11): with u_t = beta_1 (1 - 0.5 * 0.96^t),
 * u_product the running product of u_t,
 *   m_hat = u_{t+1} m / (1 - u_product u_{t+1}) + (1 - u_t) g / (1 - u_product),
 *   v_hat = v / (1 - beta_2^t),  var -= lr m_hat / (sqrt(v_hat) + epsilon).
 */
export class NadamOptimizer extends MomentsOptimizer {
  static get className() {
    return 'Nadam';
  }
  private uT = 0;
  private uT1 = 0;

  constructor(learningRate: number, beta1: number, beta2: number, epsilon: number) {
    super(learningRate, beta1, beta2, epsilon);
    this.extra = [{ originalName: 'u_product', variable: tf.scalar(1).variable(false) }];
  }

  protected override beginStep(step: number): void {
    this.uT = this.beta1 * (1 - 0.5 * 0.96 ** step);
    this.uT1 = this.beta1 * (1 - 0.5 * 0.96 ** (step + 1));
    const up = this.extra[0]!.variable;
    tf.tidy(() => up.assign(up.mul(this.uT)));
  }

  protected override update(value: tf.Variable, g: tf.Tensor, m: tf.Variable, v: tf.Variable, step: number): void {
    const uProduct = this.extra[0]!.variable;
    const uProduct1 = uProduct.mul(this.uT1);
    const newM = m.add(g.sub(m).mul(1 - this.beta1));
    const newV = v.add(g.square().sub(v).mul(1 - this.beta2));
    m.assign(newM);
    v.assign(newV);
    const mHat = newM.mul(this.uT1).div(tf.sub(1, uProduct1)).add(g.mul(1 - this.uT).div(tf.sub(1, uProduct)));
    const vHat = newV.div(1 - this.beta2 ** step);
    value.assign(value.sub(mHat.mul(this.learningRate).div(vHat.sqrt().add(this.epsilon))));
  }

}

/**
 * Keras's AdamW: decoupled weight decay var -= var * weight_decay * lr (on every trainable
 * variable, before the update), then Keras's Adam: alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t),
 * var -= alpha m / (sqrt(v) + epsilon).
 */
export class AdamWOptimizer extends MomentsOptimizer {
  static get className() {
    return 'AdamW';
  }
  constructor(learningRate: number, public weightDecay: number, beta1: number, beta2: number, epsilon: number) {
    super(learningRate, beta1, beta2, epsilon);
  }

  protected override update(value: tf.Variable, g: tf.Tensor, m: tf.Variable, v: tf.Variable, step: number): void {
    if (this.weightDecay > 0) value.assign(value.sub(value.mul(this.weightDecay * this.learningRate)));
    const newM = m.add(g.sub(m).mul(1 - this.beta1));
    const newV = v.add(g.square().sub(v).mul(1 - this.beta2));
    m.assign(newM);
    v.assign(newV);
    const alpha = (this.learningRate * Math.sqrt(1 - this.beta2 ** step)) / (1 - this.beta1 ** step);
    value.assign(value.sub(newM.mul(alpha).div(newV.sqrt().add(this.epsilon))));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), weightDecay: this.weightDecay };
  }
}

// ---------------------------------------------------------------------------------------------
// Schedules inside the optimizer

interface Scheduled {
  schedule: ScheduleConfig;
  /** Multiplies the schedule (set by setLearningRate: reduce_lr_on_plateau, or a resumed job). */
  scale: number;
  /** The rate asked for before the first step, turned into `scale` once the step count is known. */
  pending: number | null;
}
const SCHEDULED = new WeakMap<tf.Optimizer, Scheduled>();

function setRate(optimizer: tf.Optimizer, lr: number): void {
  const o = optimizer as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

/**
 * Makes `optimizer` take its learning rate from `schedule` at every step: before each update,
 * the rate is schedule(iterations) * scale. `initialRate` (the config's learning_rate) is the
 * rate wanted at the first step taken: the schedule's own first value for a new job, or the rate
 * a resumed job had reached (with a reduce_lr_on_plateau factor in it); the scale that gives it
 * is fixed once the step count is known (after setWeights() of a checkpoint).
 */
function attachSchedule(optimizer: tf.Optimizer, schedule: ScheduleConfig, initialRate: number): tf.Optimizer {
  const state: Scheduled = { schedule, scale: 1, pending: initialRate };
  SCHEDULED.set(optimizer, state);
  const apply = optimizer.applyGradients.bind(optimizer);
  optimizer.applyGradients = (grads: Grads) => {
    const base = scheduleValue(schedule, optimizer.iterations);
    if (state.pending !== null) {
      state.scale = base > 0 ? state.pending / base : 1;
      state.pending = null;
    }
    setRate(optimizer, base * state.scale);
    apply(grads as tf.NamedTensorMap);
  };
  return optimizer;
}

/** The tfjs optimizer for a resolved config; parameters left out take Keras's defaults. */
export function makeOptimizer(cfg: OptimizerConfig): tf.Optimizer {
  const optimizer = makeBase(cfg);
  if (cfg.schedule) attachSchedule(optimizer, cfg.schedule, Number(cfg.params.learning_rate ?? scheduleValue(cfg.schedule, 0)));
  return optimizer;
}

function makeBase(cfg: OptimizerConfig): tf.Optimizer {
  const type = cfg.type.toLowerCase();
  const spec = OPTIMIZER_SPECS[type];
  if (!spec) throw new Error(`unknown optimizer "${cfg.type}"`);
  const p = { ...spec.defaults, ...cfg.params };
  if (cfg.schedule && cfg.params.learning_rate === undefined) p.learning_rate = scheduleValue(cfg.schedule, 0);
  const num = (k: string) => Number(p[k]);
  switch (type) {
    case 'sgd':
      // Keras SGD with momentum is tfjs's MomentumOptimizer (the same update with a constant rate).
      return num('momentum') > 0
        ? new KerasMomentum(num('learning_rate'), num('momentum'), Boolean(p.nesterov))
        : tf.train.sgd(num('learning_rate'));
    case 'adam':
      return tf.train.adam(num('learning_rate'), num('beta_1'), num('beta_2'), num('epsilon'));
    case 'rmsprop':
      return new KerasRMSprop(num('learning_rate'), num('rho'), num('momentum'), num('epsilon'), Boolean(p.centered));
    case 'adagrad':
      return new KerasAdagrad(num('learning_rate'), num('initial_accumulator_value'), num('epsilon'));
    case 'adadelta':
      return tf.train.adadelta(num('learning_rate'), num('rho'), num('epsilon'));
    case 'adamax':
      return tf.train.adamax(num('learning_rate'), num('beta_1'), num('beta_2'), num('epsilon'), 0);
    case 'nadam':
      return new NadamOptimizer(num('learning_rate'), num('beta_1'), num('beta_2'), num('epsilon'));
    case 'adamw':
      return new AdamWOptimizer(num('learning_rate'), num('weight_decay'), num('beta_1'), num('beta_2'), num('epsilon'));
    default:
      throw new Error(`unknown optimizer "${cfg.type}"`);
  }
}

/**
 * The learning rate the optimizer applies at its next step. With a schedule: the schedule at
 * the current step count times the scale set by setLearningRate.
 */
export function getLearningRate(optimizer: tf.Optimizer): number {
  const s = SCHEDULED.get(optimizer);
  if (s) return s.pending ?? scheduleValue(s.schedule, optimizer.iterations) * s.scale;
  return Number((optimizer as unknown as { learningRate: number }).learningRate);
}

/**
 * Changes an optimizer's learning rate between steps (reduce_lr_on_plateau). SGD and
 * momentum keep it as a scalar tensor (setLearningRate); the others read the field.
 * With a schedule, the schedule is scaled so that the next step's rate is `lr`, and later steps
 * follow the schedule's shape from there (Keras refuses ReduceLROnPlateau with a schedule; this
 * keeps both working together).
 */
export function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  const s = SCHEDULED.get(optimizer);
  if (s) {
    if (s.pending !== null) s.pending = lr;
    else {
      const base = scheduleValue(s.schedule, optimizer.iterations);
      s.scale = base > 0 ? lr / base : s.scale;
    }
    setRate(optimizer, lr);
    return;
  }
  setRate(optimizer, lr);
}

// ---------------------------------------------------------------------------------------------
// The whole state, for checkpoints

/** Running float32 products some tfjs optimizers keep besides getWeights() (Adam's, Adamax's beta^t). */
const RUNNING_PRODUCTS = ['accBeta1', 'accBeta2'] as const;
const PRODUCT_PREFIX = '__running__/';

/**
 * The optimizer's state as named tensors: getWeights() plus its running products. tfjs's
 * setWeights() recomputes those as pow(beta, step), which can differ from the running product
 * in the last bit, and a resumed run would then drift from the uninterrupted one.
 */
export async function optimizerState(optimizer: tf.Optimizer): Promise<Array<{ name: string; tensor: tf.Tensor }>> {
  const out = await optimizer.getWeights();
  const o = optimizer as unknown as Record<string, unknown>;
  for (const key of RUNNING_PRODUCTS) if (o[key] instanceof tf.Tensor) out.push({ name: PRODUCT_PREFIX + key, tensor: o[key] as tf.Tensor });
  return out;
}

/** Restores what optimizerState() gave (getWeights() entries alone are accepted too). */
export async function setOptimizerState(optimizer: tf.Optimizer, state: Array<{ name: string; tensor: tf.Tensor }>): Promise<void> {
  await optimizer.setWeights(state.filter((w) => !w.name.startsWith(PRODUCT_PREFIX)));
  const o = optimizer as unknown as Record<string, unknown>;
  for (const w of state) {
    const key = w.name.slice(PRODUCT_PREFIX.length);
    if (w.name.startsWith(PRODUCT_PREFIX) && o[key] instanceof tf.Variable) (o[key] as tf.Variable).assign(w.tensor);
  }
}
