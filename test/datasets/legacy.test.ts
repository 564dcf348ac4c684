/**
 * Datasets stored before dtypes and statistics (format 1: float32 files, a record without
 * stats or checksum) still load, whole or from disk, and train; the public view is unchanged.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { resolveCompile } from '../../src/model-spec/compile.ts';
import { writeDatasetFiles } from '../../src/datasets/dataset-files.ts';
import { publicDataset, type DatasetRecord } from '../../src/datasets/dataset-record.ts';
import type { Records } from '../../src/metadata/records.ts';
import { loadDataset } from '../../workers/load-data.ts';
import { fit, isStoredColumn } from '../../workers/train-loop.ts';

let dataDir: string;
before(async () => {
  await initBackend('cpu');
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-legacy-'));
});
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

test('a format-1 dataset loads whole and from disk, and trains the same', async () => {
  const n = 64;
  const x = Float32Array.from({ length: n * 2 }, (_, i) => ((i * 7) % 13) / 13);
  const y = Float32Array.from({ length: n }, (_, i) => (x[i * 2]! + x[i * 2 + 1]! > 1 ? 1 : 0));
  const rec: DatasetRecord = {
    id: 'ds_legacy000000001',
    name: 'old',
    samples: n,
    x_columns: [{ name: null, shape: [2], dtype: 'float32', min: 0, max: 1, file: 'x-0.f32' }],
    y_columns: [{ name: null, shape: [], dtype: 'float32', min: 0, max: 1, file: 'y-0.f32' }],
    created_at: '2024-01-01T00:00:00.000Z',
  };
  await writeDatasetFiles(dataDir, 't', rec, [{ info: rec.x_columns[0]!, data: x }, { info: rec.y_columns[0]!, data: y }]);
  assert.deepEqual(publicDataset(rec), { id: rec.id, name: 'old', samples: n, x: { shape: [2], dtype: 'float32' }, y: { shape: [], dtype: 'float32' }, created_at: rec.created_at });
  const records = { get: async () => rec } as unknown as Records;
  const inputs = [{ name: 'in', shape: [2] }];
  const outputs = [{ name: 'out', shape: [1] }];
  const whole = await loadDataset(records, dataDir, 't', rec.id, inputs, outputs);
  const disk = await loadDataset(records, dataDir, 't', rec.id, inputs, outputs, { memoryBytes: 1 });
  assert.equal(whole.fromDisk, false);
  assert.equal(disk.fromDisk, true);
  assert.ok(isStoredColumn(disk.x[0]!));
  assert.deepEqual(Array.from((whole.x[0] as { data: Float32Array }).data), Array.from(x));
  const compiled = resolveCompile({ optimizer: 'sgd', loss: 'binary_crossentropy', metrics: ['accuracy'] }, outputs);
  const model = () => tf.sequential({ layers: [tf.layers.dense({ units: 1, activation: 'sigmoid', inputShape: [2], kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) })] });
  const opts = { epochs: 2, batchSize: 8, seed: 2, validationSplit: 0.25 };
  const a = await fit(model(), compiled, ['out'], whole.x, whole.y, opts);
  const b = await fit(model(), compiled, ['out'], disk.x, disk.y, opts);
  assert.deepEqual(b.history, a.history);
});
