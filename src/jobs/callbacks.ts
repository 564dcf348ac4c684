/**
 * Keras's standard callbacks by their Keras names and arguments, with Keras 2's defaults
 * and step-for-step logic: early_stopping, reduce_lr_on_plateau, terminate_on_nan and
 * model_checkpoint. Each keeps a small state that checkpoints carry across a resume.
 */
import { SpecError } from '../errors.ts';

type Mode = 'auto' | 'min' | 'max';

export interface EarlyStoppingConfig {
  type: 'early_stopping';
  monitor: string;
  min_delta: number;
  patience: number;
  mode: Mode;
  baseline: number | null;
  restore_best_weights: boolean;
  start_from_epoch: number;
}

export interface ReduceLrOnPlateauConfig {
  type: 'reduce_lr_on_plateau';
  monitor: string;
  factor: number;
  patience: number;
  mode: Mode;
  min_delta: number;
  cooldown: number;
  min_lr: number;
}

export interface TerminateOnNanConfig {
  type: 'terminate_on_nan';
}

export interface ModelCheckpointConfig {
  type: 'model_checkpoint';
  monitor: string;
  save_best_only: boolean;
  mode: Mode;
  initial_value_threshold: number | null;
  /** Accepted for Keras compatibility and ignored: the service keeps the versions. */
  filepath: string | null;
}

export type CallbackConfig = EarlyStoppingConfig | ReduceLrOnPlateauConfig | TerminateOnNanConfig | ModelCheckpointConfig;

type ArgKind = 'number' | 'integer' | 'boolean' | 'string' | 'mode' | 'number-or-null' | 'string-or-null';

/** Each callback's arguments: Keras's default and what a value must be. */
const SPECS: Record<CallbackConfig['type'], Record<string, { default: unknown; kind: ArgKind }>> = {
  early_stopping: {
    monitor: { default: 'val_loss', kind: 'string' },
    min_delta: { default: 0, kind: 'number' },
    patience: { default: 0, kind: 'integer' },
    mode: { default: 'auto', kind: 'mode' },
    baseline: { default: null, kind: 'number-or-null' },
    restore_best_weights: { default: false, kind: 'boolean' },
    start_from_epoch: { default: 0, kind: 'integer' },
  },
  reduce_lr_on_plateau: {
    monitor: { default: 'val_loss', kind: 'string' },
    factor: { default: 0.1, kind: 'number' },
    patience: { default: 10, kind: 'integer' },
    mode: { default: 'auto', kind: 'mode' },
    min_delta: { default: 1e-4, kind: 'number' },
    cooldown: { default: 0, kind: 'integer' },
    min_lr: { default: 0, kind: 'number' },
  },
  terminate_on_nan: {},
  model_checkpoint: {
    monitor: { default: 'val_loss', kind: 'string' },
    save_best_only: { default: false, kind: 'boolean' },
    mode: { default: 'auto', kind: 'mode' },
    initial_value_threshold: { default: null, kind: 'number-or-null' },
    filepath: { default: null, kind: 'string-or-null' },
  },
};

const ALIASES: Record<string, CallbackConfig['type']> = {
  earlystopping: 'early_stopping',
  reducelronplateau: 'reduce_lr_on_plateau',
  terminateonnan: 'terminate_on_nan',
  modelcheckpoint: 'model_checkpoint',
};

function fail(path: string, message: string): never {
  throw new SpecError(path, message, 'FIT_OPTIONS_INVALID');
}

function checkKind(value: unknown, kind: ArgKind): boolean {
  switch (kind) {
    case 'number': return typeof value === 'number' && Number.isFinite(value);
    case 'integer': return Number.isInteger(value) && (value as number) >= 0;
    case 'boolean': return typeof value === 'boolean';
    case 'string': return typeof value === 'string' && value.length > 0 && value.length <= 128;
    case 'mode': return value === 'auto' || value === 'min' || value === 'max';
    case 'number-or-null': return value === null || (typeof value === 'number' && Number.isFinite(value));
    case 'string-or-null': return value === null || (typeof value === 'string' && value.length <= 1024);
  }
}

const KIND_TEXT: Record<ArgKind, string> = {
  number: 'a number', integer: 'an integer >= 0', boolean: 'true or false', string: 'a metric name such as "val_loss"',
  mode: '"auto", "min" or "max"', 'number-or-null': 'a number or null', 'string-or-null': 'a string or null',
};

/** Validates the fit's callbacks (Keras names, snake_case or class names like "EarlyStopping"); applies Keras's defaults. */
export function validateCallbacks(callbacks: Array<Record<string, unknown>>, path: string): CallbackConfig[] {
  return callbacks.map((cb, i) => {
    const at = `${path}[${i}]`;
    const type = typeof cb.type === 'string' ? ALIASES[cb.type.toLowerCase().replace(/_/g, '')] : undefined;
    if (!type) fail(`${at}.type`, `unknown callback ${JSON.stringify(cb.type)}; supported: ${Object.keys(SPECS).join(', ')}`);
    const spec = SPECS[type];
    const out: Record<string, unknown> = { type };
    for (const [key, arg] of Object.entries(spec)) out[key] = arg.default;
    for (const [key, value] of Object.entries(cb)) {
      if (key === 'type') continue;
      const arg = spec[key];
      if (!arg) fail(`${at}.${key}`, `${type} has no argument "${key}"; it takes ${Object.keys(spec).join(', ') || 'none'}`);
      if (!checkKind(value, arg.kind)) fail(`${at}.${key}`, `${type} ${key} must be ${KIND_TEXT[arg.kind]}, got ${JSON.stringify(value)}`);
      out[key] = value;
    }
    if (type === 'reduce_lr_on_plateau') {
      const f = out.factor as number;
      if (!(f > 0 && f < 1)) fail(`${at}.factor`, `reduce_lr_on_plateau factor must be in (0, 1) (Keras refuses factor >= 1), got ${f}`);
      if ((out.min_lr as number) < 0) fail(`${at}.min_lr`, 'reduce_lr_on_plateau min_lr must be >= 0');
    }
    return out as unknown as CallbackConfig;
  });
}

/** Keras's "auto" mode: metrics that grow when better are maximised. */
function maximises(mode: Mode, monitor: string, pattern = /acc|auc|precision|recall/): boolean {
  return mode === 'max' || (mode === 'auto' && pattern.test(monitor));
}

/**
 * Keras's EarlyStopping.on_epoch_end, step for step: stops when `monitor` has not
 * improved by more than `min_delta` for `patience` epochs; remembers the best epoch.
 */
export class EarlyStopping {
  private best: number;
  private wait = 0;
  private readonly max: boolean;
  bestEpoch = -1;

  constructor(readonly config: EarlyStoppingConfig) {
    this.max = maximises(config.mode, config.monitor);
    this.best = this.max ? -Infinity : Infinity;
  }

  private isImprovement(value: number, reference: number): boolean {
    const delta = Math.abs(this.config.min_delta);
    return this.max ? value - delta > reference : value + delta < reference;
  }

  /** Returns whether this epoch is the new best (snapshot weights then) and whether to stop. */
  onEpochEnd(epoch: number, logs: Record<string, number>): { improved: boolean; stop: boolean } {
    const value = logs[this.config.monitor];
    if (value === undefined || epoch < this.config.start_from_epoch) return { improved: false, stop: false };
    this.wait += 1;
    if (this.isImprovement(value, this.best)) {
      this.best = value;
      this.bestEpoch = epoch;
      if (this.config.baseline === null || this.isImprovement(value, this.config.baseline)) this.wait = 0;
      return { improved: true, stop: false };
    }
    return { improved: false, stop: this.wait >= this.config.patience && epoch > 0 };
  }

  getState(): unknown {
    return { best: this.best, wait: this.wait, bestEpoch: this.bestEpoch };
  }

  setState(state: unknown): void {
    const s = state as { best: number | null; wait: number; bestEpoch: number };
    // JSON writes Infinity as null.
    this.best = s.best ?? (this.max ? -Infinity : Infinity);
    this.wait = s.wait;
    this.bestEpoch = s.bestEpoch;
  }
}

/** Keras's ReduceLROnPlateau.on_epoch_end: returns the new learning rate when it lowers it. */
export class ReduceLrOnPlateau {
  private best: number;
  private wait = 0;
  private cooldownCounter = 0;
  private readonly max: boolean;

  constructor(readonly config: ReduceLrOnPlateauConfig) {
    // Keras 2's ReduceLROnPlateau maximises in auto mode only for "acc" metrics.
    this.max = maximises(config.mode, config.monitor, /acc/);
    this.best = this.max ? -Infinity : Infinity;
  }

  private better(a: number, b: number): boolean {
    return this.max ? a > b + this.config.min_delta : a < b - this.config.min_delta;
  }

  onEpochEnd(logs: Record<string, number>, learningRate: number): number | null {
    const current = logs[this.config.monitor];
    if (current === undefined) return null;
    const inCooldown = this.cooldownCounter > 0;
    if (inCooldown) {
      this.cooldownCounter -= 1;
      this.wait = 0;
    }
    if (this.better(current, this.best)) {
      this.best = current;
      this.wait = 0;
    } else if (!inCooldown) {
      this.wait += 1;
      if (this.wait >= this.config.patience && learningRate > this.config.min_lr) {
        this.cooldownCounter = this.config.cooldown;
        this.wait = 0;
        return Math.max(learningRate * this.config.factor, this.config.min_lr);
      }
    }
    return null;
  }

  getState(): unknown {
    return { best: this.best, wait: this.wait, cooldownCounter: this.cooldownCounter };
  }

  setState(state: unknown): void {
    const s = state as { best: number | null; wait: number; cooldownCounter: number };
    this.best = s.best ?? (this.max ? -Infinity : Infinity);
    this.wait = s.wait;
    this.cooldownCounter = s.cooldownCounter;
  }
}

/** Keras's ModelCheckpoint with save_best_only: says when an epoch is the new best to keep. */
export class ModelCheckpoint {
  private best: number;
  private readonly max: boolean;
  bestEpoch = -1;

  constructor(readonly config: ModelCheckpointConfig) {
    this.max = maximises(config.mode, config.monitor, /acc|^fmeasure/);
    this.best = config.initial_value_threshold ?? (this.max ? -Infinity : Infinity);
  }

  /** True when this epoch's weights are to be kept as the model version. */
  onEpochEnd(epoch: number, logs: Record<string, number>): boolean {
    if (!this.config.save_best_only) {
      this.bestEpoch = epoch;
      return true;
    }
    const current = logs[this.config.monitor];
    if (current === undefined || !(this.max ? current > this.best : current < this.best)) return false;
    this.best = current;
    this.bestEpoch = epoch;
    return true;
  }

  getState(): unknown {
    return { best: this.best, bestEpoch: this.bestEpoch };
  }

  setState(state: unknown): void {
    const s = state as { best: number | null; bestEpoch: number };
    this.best = s.best ?? this.config.initial_value_threshold ?? (this.max ? -Infinity : Infinity);
    this.bestEpoch = s.bestEpoch;
  }
}

/** Keras's TerminateOnNaN: a batch whose loss is NaN or infinite ends the run. */
export class TerminateOnNan {
  constructor(readonly config: TerminateOnNanConfig) {}

  isBad(logs: Record<string, number>): boolean {
    const loss = logs.loss;
    return loss !== undefined && !Number.isFinite(loss);
  }

  getState(): unknown {
    return null;
  }

  setState(_state: unknown): void {}
}

export type Callback = EarlyStopping | ReduceLrOnPlateau | ModelCheckpoint | TerminateOnNan;

export function makeCallback(config: CallbackConfig): Callback {
  switch (config.type) {
    case 'early_stopping': return new EarlyStopping(config);
    case 'reduce_lr_on_plateau': return new ReduceLrOnPlateau(config);
    case 'model_checkpoint': return new ModelCheckpoint(config);
    case 'terminate_on_nan': return new TerminateOnNan(config);
  }
}
