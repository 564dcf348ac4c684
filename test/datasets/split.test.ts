/** splitDataset on its own: sizes by largest remainders, stored dtypes copied exactly, stratified shares. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { createDataset } from '../../src/datasets/stage.ts';
import { datasetDir, readColumnFile } from '../../src/datasets/dataset-files.ts';
import { partSizes, splitDataset } from '../../src/datasets/split.ts';
import { StatsAccumulator } from '../../src/datasets/stats.ts';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-split-'));
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
const LIMITS = { rows: 1e9, columns: 1e6 };

test('part sizes: largest remainders, summing to n', () => {
  assert.deepEqual(partSizes(10, [0.8, 0.2]), [8, 2]);
  assert.deepEqual(partSizes(10, [1 / 3, 1 / 3, 1 / 3]), [4, 3, 3]);
  assert.deepEqual(partSizes(7, [0.5, 0.5]), [4, 3]);
  assert.deepEqual(partSizes(3, [0.9, 0.1]), [3, 0]);
});

test('int32 values past 2^24 and uint8 rows are copied exactly; stratified parts keep class shares; windowed order for large sets', async () => {
  const n = 1000;
  const big = Int32Array.from({ length: n }, (_, i) => 2 ** 30 + i * 7 + 1);
  const img = Uint8Array.from({ length: n * 3 }, (_, i) => (i * 31) % 256);
  const y = Int32Array.from({ length: n }, (_, i) => (i < 900 ? 0 : 1));
  const src = await createDataset(dataDir, 't', { name: 's', source: 'test' }, LIMITS, async (stage) => {
    await (await stage.column('x', 'big', 'int32', [])).append(big);
    await (await stage.column('x', 'img', 'uint8', [3])).append(img);
    await (await stage.column('y', null, 'int32', [])).append(y);
  });
  for (const window of [1 << 20, 256]) {
    const parts = await splitDataset(dataDir, 't', src, { fractions: [0.7, 0.3], seed: 3, stratify: true }, LIMITS, window);
    assert.deepEqual(parts.map((p) => p.samples), [700, 300]);
    assert.deepEqual(parts.map((p) => p.y_columns[0]!.class_counts), [{ 0: 630, 1: 70 }, { 0: 270, 1: 30 }]);
    const seen = new Set<number>();
    for (const p of parts) {
      assert.deepEqual(p.x_columns.map((c) => [c.name, c.dtype]), [['big', 'int32'], ['img', 'uint8']]);
      const dir = datasetDir(dataDir, 't', p);
      // Read the raw int32 file: every value is one of the originals, with its image row and label.
      const raw = new Int32Array(new Uint8Array(fs.readFileSync(path.join(dir, p.x_columns[0]!.file))).buffer);
      const imgs = (await readColumnFile(dir, p.x_columns[1]!, p.samples)).data;
      const labels = (await readColumnFile(dir, p.y_columns[0]!, p.samples)).data;
      raw.forEach((v, k) => {
        const i = (v - 2 ** 30 - 1) / 7;
        assert.ok(Number.isInteger(i) && i >= 0 && i < n, `value ${v}`);
        assert.ok(!seen.has(i), 'each row once');
        seen.add(i);
        assert.deepEqual(Array.from(imgs.subarray(k * 3, k * 3 + 3)), Array.from(img.subarray(i * 3, i * 3 + 3)));
        assert.equal(labels[k], y[i]);
      });
      const acc = new StatsAccumulator([], false);
      acc.update(Float64Array.from(raw));
      assert.equal(p.x_columns[0]!.max, acc.result().max);
    }
    assert.equal(seen.size, n);
  }
});
