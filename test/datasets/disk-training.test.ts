/**
 * Training from disk: the epoch order (blocks + windows) is a function of (seed, epoch), the
 * window reader returns the right rows for every dtype, and a dataset read from disk trains
 * to exactly the same history and weights as the same dataset loaded whole, resumed or not.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { resolveCompile } from '../../src/model-spec/compile.ts';
import { createDataset } from '../../src/datasets/stage.ts';
import { readColumnFile } from '../../src/datasets/dataset-files.ts';
import type { DatasetRecord } from '../../src/datasets/dataset-record.ts';
import type { Dtype, StoredArray } from '../../src/datasets/dtypes.ts';
import { epochSeed, seededEpochPlan, shuffleLayout, shuffleInPlace, sequentialLayout, sequentialPlan } from '../../src/datasets/order.ts';
import { FileCache, WindowReader } from '../../src/datasets/reader.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';
import { fit, type DataColumn, type FitOptions } from '../../workers/train-loop.ts';

let dataDir: string;
before(async () => {
  await initBackend('cpu');
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-disk-'));
});
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const LIMITS = { rows: 1e9, columns: 1e6 };

/** Writes a dataset of one x and one y column with the given dtypes. */
async function write(x: StoredArray, xDtype: Dtype, xShape: number[], y: StoredArray, yDtype: Dtype): Promise<{ rec: DatasetRecord; dir: string }> {
  const dir = path.join(dataDir, `ds-${Math.random().toString(36).slice(2)}`);
  const rec = await createDataset(dataDir, 't', { name: 'd', source: 'test' }, LIMITS, async (stage) => {
    const xw = await stage.column('x', null, xDtype, xShape);
    await xw.append(x);
    const yw = await stage.column('y', null, yDtype, []);
    await yw.append(y);
  }, dir);
  return { rec, dir };
}

function memory(dir: string, rec: DatasetRecord): Promise<DataColumn[]> {
  return Promise.all([...rec.x_columns, ...rec.y_columns].map(async (c) => ({ ...(await readColumnFile(dir, c, rec.samples)), info: c })));
}

function stored(dir: string, rec: DatasetRecord): DataColumn[] {
  return [...rec.x_columns, ...rec.y_columns].map((c) => ({ shape: c.shape, stored: { path: path.join(dir, c.file), dtype: c.dtype, first: 0, rows: rec.samples }, info: c }));
}

/** Three classes from 6 features; x as uint8 0..255 (an image-like dtype), y int32. */
function data(n: number, seed = 1) {
  const r = mulberry32(seed);
  const x = new Uint8Array(n * 6);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < 6; j++) {
      const v = Math.floor(r() * 256);
      x[i * 6 + j] = v;
      s += j < 3 ? v : -v;
    }
    y[i] = s > 60 ? 2 : s < -60 ? 0 : 1;
  }
  return { x, y };
}

function model(): tf.LayersModel {
  return tf.sequential({ layers: [
    tf.layers.rescaling({ scale: 1 / 255, inputShape: [6] }),
    tf.layers.dense({ units: 12, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
    tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  ] });
}

// SGD with momentum: its state restores bit for bit (tfjs's Adam recomputes beta powers on restore).
const compiled = () => resolveCompile({ optimizer: { type: 'sgd', learning_rate: 0.05, momentum: 0.9 }, loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] }, [{ name: 'out', shape: [3] }]);

describe('epoch order', () => {
  test('small datasets keep the full Fisher-Yates shuffle of (seed, epoch)', () => {
    const layout = shuffleLayout(100, 16, 1 << 20);
    assert.equal(layout.windowed, false);
    const plan = seededEpochPlan(layout, 7, 3);
    // The first version of the loop: identity shuffled by mulberry32(epochSeed(seed, epoch)).
    const old = Int32Array.from({ length: 100 }, (_, i) => i);
    shuffleInPlace(old, mulberry32(epochSeed(7, 3)));
    assert.deepEqual(plan.order, old);
  });

  test('large datasets: blocks permuted, rows shuffled within windows; a permutation fixed by (seed, epoch)', () => {
    const layout = shuffleLayout(10_007, 8, 8 * 640);
    assert.ok(layout.windowed);
    assert.equal(layout.blockRows, 20);
    assert.equal(layout.blocksPerWindow, 32);
    const a = seededEpochPlan(layout, 1, 0);
    assert.deepEqual(seededEpochPlan(layout, 1, 0).order, a.order, 'same seed and epoch, same order');
    assert.notDeepEqual(seededEpochPlan(layout, 1, 1).order, a.order, 'another epoch, another order');
    assert.deepEqual([...a.order!].sort((p, q) => p - q), Array.from({ length: 10_007 }, (_, i) => i), 'a permutation');
    // Each window's rows come from its own blocks only.
    const k = layout.blocksPerWindow;
    for (let w = 0; w + 1 < a.windowStarts.length; w++) {
      const blocks = new Set(Array.from(a.blockOrder!.subarray(w * k, (w + 1) * k)));
      for (let p = a.windowStarts[w]!; p < a.windowStarts[w + 1]!; p++) assert.ok(blocks.has(Math.floor(a.order![p]! / layout.blockRows)));
    }
  });
});

describe('window reader', () => {
  for (const dtype of ['float32', 'int32', 'uint8', 'bool'] as Dtype[]) {
    test(`reads ${dtype} rows by offset in plan order, across window boundaries`, async () => {
      const n = 257;
      const values = dtype === 'float32' ? Float32Array.from({ length: n * 3 }, (_, i) => i * 0.5 - 7)
        : dtype === 'int32' ? Int32Array.from({ length: n * 3 }, (_, i) => i * 1000 - 5)
          : Uint8Array.from({ length: n * 3 }, (_, i) => (dtype === 'bool' ? i % 2 : i % 256));
      const { rec, dir } = await write(values, dtype, [3], new Int32Array(n), 'int32');
      const cols = stored(dir, rec).slice(0, 1);
      const files = new FileCache();
      for (const plan of [seededEpochPlan(shuffleLayout(n, 12, 12 * 40), 3, 0), sequentialPlan(sequentialLayout(n, 12, 12 * 40))]) {
        const reader = new WindowReader(cols, plan, files);
        for (let start = 0; start < n; start += 10) {
          const end = Math.min(n, start + 10);
          const [got] = await reader.batch(start, end);
          for (let p = start; p < end; p++) {
            const r = plan.order ? plan.order[p]! : p;
            assert.deepEqual(Array.from(got!.subarray((p - start) * 3, (p - start + 1) * 3)), Array.from(values.subarray(r * 3, r * 3 + 3)).map(Math.fround));
          }
        }
        await reader.release();
      }
      await files.close();
    });
  }
});

describe('fit from disk', () => {
  const opts: FitOptions = { epochs: 3, batchSize: 16, validationSplit: 0.2, seed: 5, shuffleWindowBytes: 28 * 48 };

  test('the same history and weights as the dataset loaded whole (windowed shuffle, validation split from the tail)', async () => {
    const { x, y } = data(600);
    const { rec, dir } = await write(x, 'uint8', [6], y, 'int32');
    const mem = await memory(dir, rec);
    const disk = stored(dir, rec);
    const a = model();
    const b = model();
    const ra = await fit(a, compiled(), ['out'], mem.slice(0, 1), mem.slice(1), opts);
    const rb = await fit(b, compiled(), ['out'], disk.slice(0, 1), disk.slice(1), opts);
    assert.deepEqual(rb.history, ra.history);
    assert.ok(ra.history.val_accuracy!.at(-1)! > 0.6, `val accuracy ${ra.history.val_accuracy}`);
    const wa = a.getWeights().map((w) => Array.from(w.dataSync()));
    const wb = b.getWeights().map((w) => Array.from(w.dataSync()));
    assert.deepEqual(wb, wa);
    a.dispose();
    b.dispose();
  });

  test('a run resumed mid-epoch from disk continues exactly like the uninterrupted one', async () => {
    const { x, y } = data(400, 2);
    const { rec, dir } = await write(x, 'uint8', [6], y, 'int32');
    const disk = stored(dir, rec);
    const full = model();
    const ref = await fit(full, compiled(), ['out'], disk.slice(0, 1), disk.slice(1), opts);

    const first = model();
    type Saved = { state: { epoch: number; batch: number; sums: number[] | null; seen: number }; weights: tf.Tensor[]; opt: Array<{ name: string; tensor: tf.Tensor }> };
    const box: { saved: Saved | null } = { saved: null };
    let batches = 0;
    await fit(first, compiled(), ['out'], disk.slice(0, 1), disk.slice(1), opts, {
      checkpointDue: () => ++batches === 27,
      onCheckpoint: async (s) => {
        const opt = (await s.optimizer.getWeights()).map((w) => ({ name: w.name, tensor: w.tensor.clone() }));
        box.saved = { state: { epoch: s.epoch, batch: s.batch, sums: s.sums, seen: s.seen }, weights: first.getWeights().map((w) => w.clone()), opt };
      },
      shouldStop: () => box.saved !== null,
    });
    const s = box.saved as Saved | null;
    assert.ok(s);
    assert.equal(s.state.epoch, 1, 'stopped inside the second epoch');
    const second = model();
    second.setWeights(s.weights);
    const rest = await fit(second, compiled(), ['out'], disk.slice(0, 1), disk.slice(1), { ...opts, resume: { ...s.state, optimizerWeights: s.opt } });
    for (const [k, v] of Object.entries(rest.history)) assert.deepEqual(v, ref.history[k]!.slice(1), k);
    tf.dispose([...s.weights, ...s.opt.map((o) => o.tensor)]);
    [full, first, second].forEach((m) => m.dispose());
  });
});
