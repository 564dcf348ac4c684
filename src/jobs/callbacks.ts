import { SpecError } from '../errors.ts';

/** Keras EarlyStopping's arguments, with Keras's defaults. */
export interface EarlyStoppingConfig {
  type: 'early_stopping';
  monitor: string;
  min_delta: number;
  patience: number;
  mode: 'auto' | 'min' | 'max';
  baseline: number | null;
  restore_best_weights: boolean;
  start_from_epoch: number;
}

export type CallbackConfig = EarlyStoppingConfig;

const EARLY_STOPPING_DEFAULTS: Omit<EarlyStoppingConfig, 'type'> = {
  monitor: 'val_loss', min_delta: 0, patience: 0, mode: 'auto', baseline: null, restore_best_weights: false, start_from_epoch: 0,
};

/**
 * Validates the fit's callbacks. early_stopping is here; the other Keras callbacks
 * (reduce_lr_on_plateau, terminate_on_nan, model_checkpoint) come with the
 * fault-tolerance issue and are refused by name until then.
 */
export function validateCallbacks(callbacks: Array<Record<string, unknown>>, path: string): CallbackConfig[] {
  return callbacks.map((cb, i) => {
    const at = `${path}[${i}]`;
    if (cb.type !== 'early_stopping') {
      throw new SpecError(`${at}.type`, `callback "${String(cb.type)}" is not supported yet; supported: early_stopping`, 'FIT_OPTIONS_INVALID');
    }
    const out: Record<string, unknown> = { ...EARLY_STOPPING_DEFAULTS };
    for (const [key, value] of Object.entries(cb)) {
      if (key === 'type') continue;
      if (!(key in EARLY_STOPPING_DEFAULTS)) {
        throw new SpecError(`${at}.${key}`, `early_stopping has no argument "${key}"; it takes ${Object.keys(EARLY_STOPPING_DEFAULTS).join(', ')}`, 'FIT_OPTIONS_INVALID');
      }
      const want = key === 'baseline' ? 'number-or-null' : typeof EARLY_STOPPING_DEFAULTS[key as keyof typeof EARLY_STOPPING_DEFAULTS];
      const ok = want === 'number-or-null' ? value === null || typeof value === 'number' : typeof value === want;
      if (!ok) throw new SpecError(`${at}.${key}`, `early_stopping ${key} must be a ${want === 'number-or-null' ? 'number or null' : want}`, 'FIT_OPTIONS_INVALID');
      out[key] = value;
    }
    const es = out as unknown as EarlyStoppingConfig;
    if (!['auto', 'min', 'max'].includes(es.mode)) throw new SpecError(`${at}.mode`, 'mode must be auto, min or max', 'FIT_OPTIONS_INVALID');
    if (!Number.isInteger(es.patience) || es.patience < 0) throw new SpecError(`${at}.patience`, 'patience must be an integer >= 0', 'FIT_OPTIONS_INVALID');
    return { ...es, type: 'early_stopping' };
  });
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
    this.max = config.mode === 'max' || (config.mode === 'auto' && /acc|auc|precision|recall/.test(config.monitor));
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
}
