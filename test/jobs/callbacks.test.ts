// Keras's callbacks on crafted loss curves: each acts at the epoch Keras 2 would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EarlyStopping, ModelCheckpoint, ReduceLrOnPlateau, TerminateOnNan, validateCallbacks, type CallbackConfig } from '../../src/jobs/callbacks.ts';
import { SpecError } from '../../src/errors.ts';

const one = (cb: Record<string, unknown>): CallbackConfig => validateCallbacks([cb], 'callbacks')[0]!;

/** Runs early stopping over a curve; returns the epoch it stopped at (or null) and the best epoch. */
function earlyStop(cb: Record<string, unknown>, curve: number[], key = 'val_loss') {
  const es = new EarlyStopping(one({ type: 'early_stopping', ...cb }) as never);
  for (const [epoch, v] of curve.entries()) {
    if (es.onEpochEnd(epoch, { [key]: v }).stop) return { stopped: epoch, best: es.bestEpoch };
  }
  return { stopped: null, best: es.bestEpoch };
}

test('early_stopping: patience, min_delta, mode, baseline and start_from_epoch as in Keras', () => {
  assert.deepEqual(earlyStop({ patience: 2 }, [1, 0.9, 0.95, 0.96, 0.97]), { stopped: 3, best: 1 });
  assert.deepEqual(earlyStop({ patience: 0 }, [1, 0.9, 0.95]), { stopped: 2, best: 1 });
  // Improvements smaller than min_delta do not count.
  assert.deepEqual(earlyStop({ patience: 1, min_delta: 0.05 }, [1, 0.97, 0.96, 0.9]), { stopped: 1, best: 0 });
  // "auto" maximises accuracy-like metrics.
  assert.deepEqual(earlyStop({ monitor: 'val_accuracy', patience: 1 }, [0.5, 0.7, 0.6, 0.65], 'val_accuracy'), { stopped: 2, best: 1 });
  assert.deepEqual(earlyStop({ monitor: 'val_accuracy', mode: 'min', patience: 1 }, [0.5, 0.7, 0.6], 'val_accuracy'), { stopped: 1, best: 0 });
  // A baseline not beaten keeps the patience running even while the value improves.
  assert.deepEqual(earlyStop({ patience: 2, baseline: 0.5 }, [1, 0.9, 0.9, 0.9]), { stopped: 2, best: 1 });
  assert.deepEqual(earlyStop({ patience: 2 }, [1, 0.9, 0.9, 0.9]), { stopped: 3, best: 1 });
  // Nothing counts before start_from_epoch.
  assert.deepEqual(earlyStop({ patience: 1, start_from_epoch: 3 }, [1, 2, 3, 4, 5, 6]), { stopped: 4, best: 3 });
  // A monitor that is not logged never stops the run.
  assert.deepEqual(earlyStop({ patience: 0, monitor: 'val_auc' }, [1, 2, 3]), { stopped: null, best: -1 });
});

test('reduce_lr_on_plateau: patience, factor, min_lr, cooldown as in Keras', () => {
  const rl = new ReduceLrOnPlateau(one({ type: 'reduce_lr_on_plateau', monitor: 'loss', patience: 1, factor: 0.5, cooldown: 1, min_lr: 0.02 }) as never);
  let lr = 0.1;
  const lrs: number[] = [];
  for (const loss of [1, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5]) {
    lr = rl.onEpochEnd({ loss }, lr) ?? lr;
    lrs.push(Number(lr.toFixed(6)));
  }
  // Reduce after 1 flat epoch, then 1 cooldown epoch, then again; never below min_lr; a real improvement resets.
  assert.deepEqual(lrs, [0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02, 0.02, 0.02]);
  // min_delta: an improvement smaller than it is a plateau.
  const small = new ReduceLrOnPlateau(one({ type: 'reduce_lr_on_plateau', monitor: 'loss', patience: 1, min_delta: 0.1 }) as never);
  assert.equal(small.onEpochEnd({ loss: 1 }, 0.1), null);
  assert.ok(Math.abs(small.onEpochEnd({ loss: 0.95 }, 0.1)! - 0.01) < 1e-12);
});

test('model_checkpoint: save_best_only keeps the best epoch of the monitor; initial_value_threshold must be beaten', () => {
  const mc = new ModelCheckpoint(one({ type: 'model_checkpoint', save_best_only: true }) as never);
  const kept = [0.9, 0.7, 0.8, 0.6, 0.65].map((v, e) => mc.onEpochEnd(e, { val_loss: v }));
  assert.deepEqual(kept, [true, true, false, true, false]);
  assert.equal(mc.bestEpoch, 3);
  const threshold = new ModelCheckpoint(one({ type: 'model_checkpoint', save_best_only: true, initial_value_threshold: 0.65 }) as never);
  assert.deepEqual([0.9, 0.7, 0.6].map((v, e) => threshold.onEpochEnd(e, { val_loss: v })), [false, false, true]);
  const acc = new ModelCheckpoint(one({ type: 'ModelCheckpoint', monitor: 'val_accuracy', save_best_only: true, filepath: 'best.h5' }) as never);
  assert.deepEqual([0.5, 0.7, 0.6].map((v, e) => acc.onEpochEnd(e, { val_accuracy: v })), [true, true, false]);
});

test('terminate_on_nan: a NaN or infinite loss is bad', () => {
  const t = new TerminateOnNan(one({ type: 'terminate_on_nan' }) as never);
  assert.equal(t.isBad({ loss: 0.3 }), false);
  assert.equal(t.isBad({ loss: Number.NaN }), true);
  assert.equal(t.isBad({ loss: Infinity }), true);
});

test('callback states survive a checkpoint round trip through JSON', () => {
  const a = new EarlyStopping(one({ type: 'early_stopping', patience: 2 }) as never);
  a.onEpochEnd(0, { val_loss: 1 });
  a.onEpochEnd(1, { val_loss: 1.1 });
  const b = new EarlyStopping(one({ type: 'early_stopping', patience: 2 }) as never);
  b.setState(JSON.parse(JSON.stringify(a.getState())));
  assert.deepEqual(b.onEpochEnd(2, { val_loss: 1.2 }), a.onEpochEnd(2, { val_loss: 1.2 }));
  // A fresh state (best = Infinity, written as null by JSON) reads back as Infinity.
  const fresh = new ReduceLrOnPlateau(one({ type: 'reduce_lr_on_plateau' }) as never);
  fresh.setState(JSON.parse(JSON.stringify(fresh.getState())));
  assert.equal(fresh.onEpochEnd({ val_loss: 5 }, 0.1), null);
});

test('callbacks are validated with paths and Keras names', () => {
  assert.equal(one({ type: 'EarlyStopping' }).type, 'early_stopping');
  assert.equal(one({ type: 'ReduceLROnPlateau' }).type, 'reduce_lr_on_plateau');
  const bad: Array<[Record<string, unknown>, RegExp, string]> = [
    [{ type: 'csv_logger' }, /unknown callback "csv_logger"/, 'callbacks[0].type'],
    [{ type: 'early_stopping', patience: -1 }, /integer >= 0/, 'callbacks[0].patience'],
    [{ type: 'early_stopping', verbose: 1 }, /no argument "verbose"/, 'callbacks[0].verbose'],
    [{ type: 'reduce_lr_on_plateau', factor: 1.5 }, /factor must be in \(0, 1\)/, 'callbacks[0].factor'],
    [{ type: 'model_checkpoint', mode: 'best' }, /"auto", "min" or "max"/, 'callbacks[0].mode'],
    [{ type: 'terminate_on_nan', monitor: 'loss' }, /takes none/, 'callbacks[0].monitor'],
  ];
  for (const [cb, message, path] of bad) {
    assert.throws(() => one(cb), (err: unknown) => err instanceof SpecError && message.test(err.message) && err.path === path && err.code === 'FIT_OPTIONS_INVALID');
  }
});
