/**
 * The streaming parsers on their own: CSV and .npy give the same columns however the bytes
 * are cut into chunks (rows, quoted fields, CRLF and headers split anywhere), and the
 * streaming statistics agree with a direct computation.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ingestCsv, queryRoles } from '../../src/datasets/csv-ingest.ts';
import { ingestNpy } from '../../src/datasets/npy.ts';
import { readColumnFile } from '../../src/datasets/dataset-files.ts';
import { createDataset } from '../../src/datasets/stage.ts';
import { StatsAccumulator } from '../../src/datasets/stats.ts';
import { mulberry32 } from '../../src/engine/seeded-random.ts';
import { npy } from './arrays.ts';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kts-ingest-'));
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
const LIMITS = { rows: 1e9, columns: 1e6 };

/** `buf` cut at random places. */
function* pieces(buf: Buffer, seed: number): Generator<Buffer> {
  const r = mulberry32(seed);
  for (let i = 0; i < buf.length;) {
    const n = 1 + Math.floor(r() * 9);
    yield buf.subarray(i, i + n);
    i += n;
  }
}

async function readAll(dir: string, rec: Awaited<ReturnType<typeof createDataset>>) {
  const read = (cols: typeof rec.x_columns) => Promise.all(cols.map(async (c) => Array.from((await readColumnFile(dir, c, rec.samples)).data)));
  return { x: await read(rec.x_columns), y: await read(rec.y_columns), rec };
}

async function csv(source: Iterable<Buffer>, gatherBytes: number, labels = ['kind']) {
  const dir = path.join(dataDir, `csv-${Math.random().toString(36).slice(2)}`);
  const rec = await createDataset(dataDir, 't', { name: 'c', source: 'csv' }, LIMITS, (stage) => ingestCsv(source, stage, {
    delimiter: 44, roles: queryRoles(labels, null, { label: 'label', features: 'features' }), maxColumns: 1000, where: 'body', gatherBytes,
  }).then(() => undefined), dir);
  return readAll(dir, rec);
}

describe('CSV', () => {
  const text = '\ufeffa,"b, the second",kind\r\n1.5,-2e3,"cat, ""big"""\r\n\r\n3,4,dog\n5,"6",\n7,8,"multi\nline"\n9,10,dog';
  test('the same columns however the bytes are chunked (quotes, CRLF, BOM, blank lines, no final newline)', async () => {
    const whole = await csv([Buffer.from(text)], 1 << 20);
    assert.deepEqual(whole.x, [[1.5, -2000, 3, 4, 5, 6, 7, 8, 9, 10]]);
    assert.deepEqual(whole.rec.x_columns[0]!.columns, ['a', 'b, the second']);
    assert.deepEqual(whole.rec.y_columns[0]!.vocabulary, { kind: ['', 'cat, "big"', 'dog', 'multi\nline'] });
    assert.deepEqual(whole.y, [[1, 2, 0, 3, 2]]);
    for (let seed = 1; seed <= 30; seed++) {
      const cut = await csv(pieces(Buffer.from(text), seed), 1 + (seed % 5));
      assert.deepEqual([cut.x, cut.y, cut.rec.checksum], [whole.x, whole.y, whole.rec.checksum], `seed ${seed}`);
    }
  });

  test('a larger numeric file in odd chunks, mixed numeric and string labels', async () => {
    const r = mulberry32(9);
    const lines = ['f1,f2,f3,kind,score'];
    for (let i = 0; i < 500; i++) lines.push(`${(r() * 100).toFixed(3)},${Math.floor(r() * 1e6)},${(r() - 0.5).toExponential(4)},${['x', 'y', 'z'][i % 3]},${i % 7}`);
    const buf = Buffer.from(lines.join('\n'));
    const a = await csv([buf], 1 << 20, ['kind', 'score']);
    const b = await csv(pieces(buf, 3), 64, ['kind', 'score']);
    assert.deepEqual(b.x, a.x);
    assert.deepEqual(b.y, a.y);
    assert.equal(a.rec.y_columns[0]!.dtype, 'float32', 'a numeric label keeps y float32');
    assert.deepEqual(a.y[0]!.slice(0, 6), [0, 0, 1, 1, 2, 2]);
    assert.deepEqual(a.x[0]!.slice(0, 3), lines[1]!.split(',').slice(0, 3).map(Number).map(Math.fround));
  });
});

describe('.npy', () => {
  for (const [descr, values] of [['<f8', [0.1, 2.5, -3, 1e-8, 7, 8]], ['<i8', [1, -2, 3, 4, 5, 6]], ['|b1', [1, 0, 0, 1, 1, 1]], ['<f4', [1, 2, 3, 4, 5, 6]]] as const) {
    test(`${descr} in 1 to 9 byte chunks, format 1 and 2 headers`, async () => {
      for (const version of [1, 2] as const) {
        for (const seed of [1, 2, 3]) {
          const dir = path.join(dataDir, `npy-${Math.random().toString(36).slice(2)}`);
          const file = npy(descr, [3, 2], values, { version });
          const rec = await createDataset(dataDir, 't', { name: 'n', source: 'npy' }, LIMITS, (stage) => ingestNpy(pieces(file, seed), stage, 'x', null, { ...LIMITS, bytes: 1e9 }, 'x').then(() => undefined), dir);
          const { x } = await readAll(dir, rec);
          assert.deepEqual(x, [values.map(Math.fround)]);
          assert.deepEqual(rec.x_columns[0]!.shape, [2]);
        }
      }
    });
  }
});

test('streaming statistics agree with a direct computation', () => {
  const r = mulberry32(4);
  const n = 1000;
  const data = Float32Array.from({ length: n * 3 }, (_, i) => 1e4 + (i % 3) * 50 + r() * (i % 3 + 1));
  const acc = new StatsAccumulator([3], false);
  for (let i = 0; i < n; i += 37) acc.update(data.subarray(i * 3, Math.min(n, i + 37) * 3));
  const s = acc.result();
  for (let f = 0; f < 3; f++) {
    const col = Array.from({ length: n }, (_, i) => data[i * 3 + f]!);
    const mean = col.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(col.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    assert.ok(Math.abs(s.features!.mean[f]! - mean) < 1e-9 * mean, `mean ${f}`);
    assert.ok(Math.abs(s.features!.std[f]! - std) < 1e-6, `std ${f}: ${s.features!.std[f]} vs ${std}`);
    assert.equal(s.features!.min[f], Math.min(...col));
    assert.equal(s.features!.max[f], Math.max(...col));
  }
  const labels = new StatsAccumulator([], true);
  labels.update(Float32Array.from([2, 0, 2, 1, 2]));
  assert.deepEqual(labels.result().class_counts, { 0: 1, 1: 1, 2: 3 });
  const reg = new StatsAccumulator([], true);
  reg.update(Float32Array.from([0.5, 1]));
  assert.equal(reg.result().class_counts, undefined, 'no class counts for non-integer labels');
});
