/**
 * Keras optimizers on tfjs: the names, parameters and defaults of Keras 2 (not
 * tfjs's defaults), mapped onto the tfjs optimizer classes.
 */
import * as tf from '@tensorflow/tfjs';
import type { OptimizerConfig } from './types.ts';

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
};

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

/** The tfjs optimizer for a resolved config; parameters left out take Keras's defaults. */
export function makeOptimizer(cfg: OptimizerConfig): tf.Optimizer {
  const type = cfg.type.toLowerCase();
  const spec = OPTIMIZER_SPECS[type];
  if (!spec) throw new Error(`unknown optimizer "${cfg.type}"`);
  const p = { ...spec.defaults, ...cfg.params };
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
    default:
      throw new Error(`unknown optimizer "${cfg.type}"`);
  }
}

/** The learning rate an optimizer applies now. */
export function getLearningRate(optimizer: tf.Optimizer): number {
  return Number((optimizer as unknown as { learningRate: number }).learningRate);
}

/**
 * Changes an optimizer's learning rate between steps (reduce_lr_on_plateau). SGD and
 * momentum keep it as a scalar tensor (setLearningRate); the others read the field.
 */
export function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  const o = optimizer as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}
