// Streamed dataset uploads: CSV (plain, gzip, string labels, several labels), multipart
// (.npy and .csv parts) and .npz in every dtype, read back from storage; statistics and
// checksums; the error cases (4xx with a code, nothing left behind) and the limits (413).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import request from 'supertest';
import { useStack, waitForJob } from '../helpers/stack.ts';
import { readColumnFile } from '../../src/datasets/dataset-files.ts';
import { paths } from '../../src/storage/paths.ts';
import { nameClasses, versionClassNames } from '../../src/datasets/class-names.ts';
import { multipartBody, npy, npz, type NpyDescr } from '../datasets/arrays.ts';

const stack = useStack({ env: { MAX_UPLOAD_ROWS: '2000', MAX_UPLOAD_BYTES: '400000', MAX_UPLOAD_COLUMNS: '100' } });
const iris = fs.readFileSync(new URL('../fixtures/datasets/iris.csv', import.meta.url), 'utf8');
const NAMES = ['setosa', 'versicolor', 'virginica'];

/** x and y of a stored dataset, read back as float32 arrays. */
async function stored(ds: { id: string }) {
  const rec = JSON.parse(fs.readFileSync(path.join(paths.dataset(stack.config.dataDir, 'default', ds.id), 'manifest.json'), 'utf8'));
  const dir = paths.dataset(stack.config.dataDir, 'default', ds.id);
  const read = (cols: any[]) => Promise.all(cols.map(async (c) => Array.from((await readColumnFile(dir, c, rec.samples)).data)));
  return { rec, x: await read(rec.x_columns), y: await read(rec.y_columns) };
}

/** Nothing half-written: the tmp area is empty and the tenant holds only `count` dataset dirs. */
function assertClean(count: number) {
  const tmp = paths.tmp(stack.config.dataDir);
  assert.deepEqual(fs.existsSync(tmp) ? fs.readdirSync(tmp) : [], [], 'DATA_DIR/tmp is empty');
  const dir = path.join(stack.config.dataDir, 'tenants', 'default', 'datasets');
  assert.equal(fs.existsSync(dir) ? fs.readdirSync(dir).length : 0, count, 'dataset directories');
}

async function datasetDirs(): Promise<number> {
  const dir = path.join(stack.config.dataDir, 'tenants', 'default', 'datasets');
  return fs.existsSync(dir) ? fs.readdirSync(dir).length : 0;
}

test('CSV: label column, features, statistics, class counts, checksum; gzip gives the same files', async () => {
  const api = request(stack.app.server);
  const res = await api.post('/v1/datasets?name=iris&label=species').set('content-type', 'text/csv').send(iris).expect(201);
  const ds = res.body;
  assert.equal(res.headers.location, `/v1/datasets/${ds.id}`);
  assert.equal(ds.samples, 150);
  assert.equal(ds.source, 'csv');
  assert.deepEqual([ds.x, ds.y], [{ shape: [4], dtype: 'float32' }, { shape: [], dtype: 'float32' }], 'x and y as API.md shows them');
  assert.deepEqual(ds.columns.x, ['sepal_length', 'sepal_width', 'petal_length', 'petal_width']);
  assert.deepEqual(ds.stats.y.class_counts, { 0: 50, 1: 50, 2: 50 });
  const rows = iris.trim().split(/\r?\n/).slice(1).map((l) => l.split(',').map(Number));
  const mean0 = rows.reduce((a, r) => a + r[0], 0) / 150;
  const std0 = Math.sqrt(rows.reduce((a, r) => a + (r[0] - mean0) ** 2, 0) / 150);
  assert.ok(Math.abs(ds.stats.x.features.mean[0] - mean0) < 1e-5, `${ds.stats.x.features.mean[0]} vs ${mean0}`);
  assert.ok(Math.abs(ds.stats.x.features.std[0] - std0) < 1e-5);
  assert.equal(ds.stats.x.features.min[2], 1);
  assert.equal(ds.stats.x.features.max[2], Math.fround(6.9), 'statistics of the stored float32 values');
  assert.match(ds.checksum, /^sha256:[0-9a-f]{64}$/);
  assert.equal(ds.bytes, 150 * 4 * 4 + 150 * 4);
  assert.deepEqual((await api.get(`/v1/datasets/${ds.id}`).expect(200)).body, ds);
  const back = await stored(ds);
  assert.deepEqual(back.x[0].slice(0, 4), [5.1, 3.5, 1.4, 0.2].map(Math.fround));
  assert.deepEqual(back.y[0], rows.map((r) => r[4]));

  const gz = await api.post('/v1/datasets?name=iris-gz&label=species').set('content-type', 'text/csv').set('content-encoding', 'gzip').send(zlib.gzipSync(iris)).expect(201);
  assert.equal(gz.body.checksum, ds.checksum, 'the same bytes stored');

  // Tab-separated, several label columns, chosen features.
  const tsv = iris.replace(/,/g, '\t');
  const two = (await api.post('/v1/datasets?name=two&label=species,petal_width&features=sepal_length,petal_length&delimiter=tab').set('content-type', 'text/csv').send(tsv).expect(201)).body;
  assert.deepEqual([two.x.shape, two.y.shape], [[2], [2]]);
  assert.deepEqual(two.columns.y, ['species', 'petal_width']);
  const b2 = await stored(two);
  assert.deepEqual(b2.x[0].slice(0, 2), [5.1, 1.4].map(Math.fround));
  assert.deepEqual(b2.y[0].slice(0, 2), [0, Math.fround(0.2)]);
});

test('CSV: string labels become integers of a sorted vocabulary, quoted fields, CRLF; used by fit', async () => {
  const api = request(stack.app.server);
  const lines = iris.trim().split(/\r?\n/);
  const csv = [lines[0], ...lines.slice(1).map((l) => {
    const f = l.split(',');
    return `${f.slice(0, 4).join(',')},"${NAMES[Number(f[4])]}"`;
  })].join('\r\n') + '\r\n';
  const ds = (await api.post('/v1/datasets?name=named&label=species').set('content-type', 'text/csv').send(csv).expect(201)).body;
  assert.equal(ds.y.dtype, 'int32');
  assert.deepEqual(ds.vocabulary, { species: NAMES });
  assert.deepEqual(ds.stats.y.class_counts, { 0: 50, 1: 50, 2: 50 });
  const back = await stored(ds);
  assert.deepEqual(back.y[0].slice(0, 3), [0, 0, 0]);
  assert.equal(back.y[0][149], 2);
  // Reversed order of first appearance still maps to the sorted vocabulary.
  const rev = [lines[0], ...lines.slice(1).reverse().map((l) => l.replace(/,([012])$/, (_m, c) => `,${['cat', 'bird', 'ant'][Number(c)]}`))].join('\n');
  const r = (await api.post('/v1/datasets?name=rev&label=species').set('content-type', 'text/csv').send(rev).expect(201)).body;
  assert.deepEqual(r.vocabulary, { species: ['ant', 'bird', 'cat'] });
  assert.equal((await stored(r)).y[0][0], 0, 'the first row (a virginica, "ant") is class 0');

  const model = (await api.post('/v1/models').send({
    spec: { type: 'sequential', layers: [{ type: 'Dense', units: 8, activation: 'relu', input_shape: [4] }, { type: 'Dense', units: 3, activation: 'softmax' }] },
    compile: { optimizer: { type: 'adam', learning_rate: 0.05 }, loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] },
  }).expect(201)).body;
  const job = await waitForJob(stack.app, (await api.post(`/v1/models/${model.id}/fit`).send({ dataset_id: ds.id, epochs: 30, batch_size: 16, seed: 1 }).expect(202)).body.id);
  assert.equal(job.status, 'completed', JSON.stringify(job.error));
  assert.ok(job.history.accuracy.at(-1) > 0.8, `accuracy ${job.history.accuracy.at(-1)}`);
  // predict's classes can name them (the route maps indices through these).
  const rec = await stack.app.records.get<any>('model', 'default', model.id);
  const names = await versionClassNames(stack.app.records, 'default', rec, 1);
  assert.deepEqual(names, [NAMES]);
  assert.deepEqual(nameClasses([2, 0, [1]], names![0]!), ['virginica', 'setosa', ['versicolor']]);
  // Through the route: ?classes=true answers the label strings.
  const rows = lines.slice(1, 4).map((l) => l.split(',').slice(0, 4).map(Number));
  const pred = (await api.post(`/v1/models/${model.id}/predict?classes=true`).send({ instances: rows }).expect(200)).body;
  assert.ok(pred.classes.every((c: unknown) => typeof c === 'string' && NAMES.includes(c as string)), JSON.stringify(pred.classes));
});

const DTYPES: Array<[NpyDescr, string, number[]]> = [
  ['<f4', 'float32', [0.5, -1.25, 3, 1e-3]],
  ['<f8', 'float32', [0.1, -2.5, 1e10, 7]],
  ['<f2', 'float32', [0.5, -2, 1024, 0.25]],
  ['<i4', 'int32', [-5, 0, 2147483647, 9]],
  ['<i8', 'int32', [-5, 0, 123456, -2147483648]],
  ['|i1', 'int32', [-128, 127, 0, 5]],
  ['<u2', 'int32', [0, 65535, 3, 4]],
  ['|u1', 'uint8', [0, 255, 17, 3]],
  ['|b1', 'bool', [1, 0, 1, 1]],
];

test('multipart .npy parts round-trip every dtype (float64 as float32, int64 as int32); .csv parts; C order only', async () => {
  const api = request(stack.app.server);
  for (const [descr, dtype, row] of DTYPES) {
    const xs = [...row, ...row.map((v) => (dtype === 'bool' ? 1 - v : v)), ...row];
    const { body, type } = multipartBody([['name', `npy-${descr}`], ['x', npy(descr, [3, 2, 2], xs)], ['y', npy('<i8', [3], [0, 1, 2])]]);
    const ds = (await api.post('/v1/datasets').set('content-type', type).send(body).expect(201)).body;
    assert.equal(ds.name, `npy-${descr}`);
    assert.deepEqual([ds.x.shape, ds.x.dtype, ds.y.dtype, ds.samples], [[2, 2], dtype, 'int32', 3], descr);
    const back = await stored(ds);
    assert.deepEqual(back.x[0], xs.map(Math.fround), descr);
    assert.deepEqual(back.y[0], [0, 1, 2]);
  }
  // CSV parts (header row), named inputs and outputs.
  const { body, type } = multipartBody([
    ['x_a', npy('<f4', [2, 3], [1, 2, 3, 4, 5, 6])],
    ['x_b', 'u,v\n1,2\n3,4\n', 'b.csv'],
    ['y_out', 'label\ncat\ndog\n', 'y.csv'],
  ]);
  const multi = (await api.post('/v1/datasets?name=multi').set('content-type', type).send(body).expect(201)).body;
  assert.deepEqual(Object.keys(multi.x), ['a', 'b']);
  assert.deepEqual(multi.x.b.shape, [2]);
  assert.deepEqual(multi.vocabulary, { label: ['cat', 'dog'] });
});

test('.npz bodies (stored and compressed), with named arrays', async () => {
  const api = request(stack.app.server);
  const x = Array.from({ length: 20 }, (_, i) => i / 4);
  for (const compressed of [false, true]) {
    const file = npz({ x: npy('<f8', [5, 4], x), y: npy('|u1', [5], [1, 0, 1, 0, 1]) }, compressed);
    const ds = (await api.post(`/v1/datasets?name=npz-${compressed}`).set('content-type', 'application/octet-stream').send(file).expect(201)).body;
    assert.equal(ds.source, 'npz');
    assert.deepEqual([ds.x.shape, ds.x.dtype, ds.y.dtype], [[4], 'float32', 'uint8']);
    assert.deepEqual((await stored(ds)).x[0], x.map(Math.fround));
  }
  const named = npz({ x_in1: npy('<f4', [2, 1], [1, 2]), x_in2: npy('<f4', [2, 3], [1, 2, 3, 4, 5, 6]), y_out: npy('<i4', [2], [0, 1]) });
  const ds = (await api.post('/v1/datasets?name=named').set('content-type', 'application/x-npz').send(named).expect(201)).body;
  assert.deepEqual(Object.keys(ds.x).sort(), ['in1', 'in2']);
  assert.deepEqual(Object.keys(ds.y), ['out']);
});

test('bad uploads answer a 4xx naming the problem and leave nothing behind; limits answer 413', async () => {
  const api = request(stack.app.server);
  const before = await datasetDirs();
  const x = npy('<f4', [3, 2], [1, 2, 3, 4, 5, 6]);
  const form = (parts: Array<[string, string | Buffer, string?]>) => multipartBody(parts);
  const cases: Array<[string, () => request.Test, number, string, RegExp]> = [
    ['unknown parameter', () => api.post('/v1/datasets?name=a&lable=species').set('content-type', 'text/csv').send(iris), 400, 'VALIDATION_FAILED', /query.lable is not a known parameter/],
    ['no name', () => api.post('/v1/datasets?label=species').set('content-type', 'text/csv').send(iris), 400, 'VALIDATION_FAILED', /name/],
    ['unknown label', () => api.post('/v1/datasets?name=a&label=kind').set('content-type', 'text/csv').send(iris), 422, 'DATASET_INVALID', /label column "kind" is not in the CSV header/],
    ['not a number', () => api.post('/v1/datasets?name=a&label=c').set('content-type', 'text/csv').send('a,b,c\n1,2,0\n3,x7,1\n'), 422, 'DATASET_INVALID', /column "b" holds "x7" in data row 2/],
    ['missing value', () => api.post('/v1/datasets?name=a&label=c').set('content-type', 'text/csv').send('a,b,c\n1,,0\n'), 422, 'DATASET_INVALID', /column "b" has no value in data row 1/],
    ['ragged row', () => api.post('/v1/datasets?name=a&label=c').set('content-type', 'text/csv').send('a,b,c\n1,2,0\n3,4\n'), 422, 'DATASET_INVALID', /data row 2 has 2 fields but the header has 3/],
    ['empty CSV', () => api.post('/v1/datasets?name=a').set('content-type', 'text/csv').send(''), 422, 'DATASET_INVALID', /empty/],
    ['header only', () => api.post('/v1/datasets?name=a').set('content-type', 'text/csv').send('a,b\n'), 422, 'DATASET_INVALID', /no data rows/],
    ['duplicate column', () => api.post('/v1/datasets?name=a').set('content-type', 'text/csv').send('a,a\n1,2\n'), 422, 'DATASET_INVALID', /twice/],
    ['bad gzip', () => api.post('/v1/datasets?name=a').set('content-type', 'text/csv').set('content-encoding', 'gzip').send(Buffer.from('not gzip at all')), 422, 'DATASET_INVALID', /gzip/],
    ['other encoding', () => api.post('/v1/datasets?name=a').set('content-type', 'text/csv').set('content-encoding', 'br').send('a\n1\n'), 415, 'UNSUPPORTED_MEDIA_TYPE', /br/],
    ['too many rows', () => api.post('/v1/datasets?name=a').set('content-type', 'text/csv').send(`a\n${'1\n'.repeat(2001)}`), 413, 'PAYLOAD_TOO_LARGE', /MAX_UPLOAD_ROWS/],
    ['too many bytes', () => api.post('/v1/datasets?name=a').set('content-type', 'text/csv').send(`a,b\n${'1234567,1234567\n'.repeat(30000)}`), 413, 'PAYLOAD_TOO_LARGE', /MAX_UPLOAD_BYTES/],
    ['gzip bomb', () => api.post('/v1/datasets?name=a').set('content-type', 'text/csv').set('content-encoding', 'gzip').send(zlib.gzipSync(`a\n${'1\n'.repeat(300000)}`)), 413, 'PAYLOAD_TOO_LARGE', /after gunzip/],
    ['too many columns', () => api.post('/v1/datasets?name=a').set('content-type', 'text/csv').send(`${Array.from({ length: 101 }, (_, i) => `c${i}`).join(',')}\n`), 413, 'PAYLOAD_TOO_LARGE', /MAX_UPLOAD_COLUMNS/],
    ['fortran order', () => { const f = form([['name', 'a'], ['x', npy('<f4', [3, 2], [1, 2, 3, 4, 5, 6], { fortran: true })], ['y', npy('<f4', [3], [0, 1, 0])]]); return api.post('/v1/datasets').set('content-type', f.type).send(f.body); }, 422, 'DATASET_INVALID', /Fortran order/],
    ['object array', () => { const f = form([['name', 'a'], ['x', npy('|O', [3], [1, 2, 3])]]); return api.post('/v1/datasets').set('content-type', f.type).send(f.body); }, 422, 'DATASET_INVALID', /object arrays/],
    ['string array', () => { const f = form([['name', 'a'], ['x', x], ['y', npy('<U5', [3], [1, 2, 3])]]); return api.post('/v1/datasets').set('content-type', f.type).send(f.body); }, 422, 'DATASET_INVALID', /string/],
    ['big-endian', () => { const f = form([['name', 'a'], ['x', npy('>f4', [3, 2], [1, 2, 3, 4, 5, 6])]]); return api.post('/v1/datasets').set('content-type', f.type).send(f.body); }, 422, 'DATASET_INVALID', /big-endian/],
    ['x/y mismatch', () => { const f = form([['name', 'a'], ['x', x], ['y', npy('<f4', [2], [0, 1])]]); return api.post('/v1/datasets').set('content-type', f.type).send(f.body); }, 422, 'DATASET_INVALID', /y has 2 samples but x has 3/],
    ['truncated npy', () => { const f = form([['name', 'a'], ['x', x.subarray(0, x.length - 5)]]); return api.post('/v1/datasets').set('content-type', f.type).send(f.body); }, 422, 'DATASET_INVALID', /ends after 2 of its 3 samples/],
    ['int64 overflow', () => { const f = form([['name', 'a'], ['x', npy('<i8', [2], [1, 2 ** 40])]]); return api.post('/v1/datasets').set('content-type', f.type).send(f.body); }, 422, 'DATASET_INVALID', /does not fit in int32/],
    ['no x', () => { const f = form([['name', 'a'], ['y', x]]); return api.post('/v1/datasets').set('content-type', f.type).send(f.body); }, 422, 'DATASET_INVALID', /no x/],
    ['unknown part', () => { const f = form([['name', 'a'], ['z', x]]); return api.post('/v1/datasets').set('content-type', f.type).send(f.body); }, 422, 'DATASET_INVALID', /unexpected part "z"/],
    ['multipart without name', () => { const f = form([['x', x]]); return api.post('/v1/datasets').set('content-type', f.type).send(f.body); }, 400, 'VALIDATION_FAILED', /name/],
    ['huge npy header shape', () => { const f = form([['name', 'a'], ['x', npy('<f4', [100000, 2], [1, 2])]]); return api.post('/v1/datasets').set('content-type', f.type).send(f.body); }, 413, 'PAYLOAD_TOO_LARGE', /MAX_UPLOAD_ROWS/],
    ['npz with other arrays', () => api.post('/v1/datasets?name=a').set('content-type', 'application/octet-stream').send(npz({ x, labels: x })), 422, 'DATASET_INVALID', /"labels"/],
    ['damaged npz', () => api.post('/v1/datasets?name=a').set('content-type', 'application/octet-stream').send(npz({ x, y: x }).subarray(0, 100)), 422, 'DATASET_INVALID', /npz/],
    ['npy as octet-stream', () => api.post('/v1/datasets?name=a').set('content-type', 'application/octet-stream').send(x), 422, 'DATASET_INVALID', /\.npz/],
    ['garbage octet-stream', () => api.post('/v1/datasets?name=a').set('content-type', 'application/octet-stream').send(Buffer.from([0, 255, 1, 2])), 422, 'DATASET_INVALID', /\.npz/],
    ['NaN in npy', () => { const f = form([['name', 'a'], ['x', npy('<f4', [2], [1, NaN])]]); return api.post('/v1/datasets').set('content-type', f.type).send(f.body); }, 422, 'DATASET_INVALID', /sample 1 holds NaN/],
  ];
  for (const [what, send, status, code, message] of cases) {
    const res = await send();
    assert.equal(res.status, status, `${what}: ${res.status} ${res.text.slice(0, 300)}`);
    assert.equal(res.body.error?.code, code, `${what}: ${res.text.slice(0, 300)}`);
    assert.match(res.body.error.message, message, what);
  }
  assertClean(before);
});

test('a client that drops mid-upload leaves nothing behind', async () => {
  const before = await datasetDirs();
  const { request: httpRequest } = await import('node:http');
  const url = new URL(stack.url);
  await new Promise<void>((resolve) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method: 'POST', path: '/v1/datasets?name=dropped', headers: { 'content-type': 'text/csv', 'transfer-encoding': 'chunked' } });
    req.on('error', () => resolve());
    req.write(`a,b\n${'1,2\n'.repeat(1000)}`);
    setTimeout(() => {
      req.destroy();
      resolve();
    }, 300);
  });
  const end = Date.now() + 5000;
  for (;;) {
    try {
      assertClean(before);
      break;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

test('odd bodies and content types on the dataset routes: a 4xx with a code, never a 5xx', async () => {
  const api = request(stack.app.server);
  const payloads: Array<[string, string | Buffer]> = [
    ['application/json', '{"a":'], ['application/json', 'null'], ['text/plain', 'hello'], ['application/x-www-form-urlencoded', 'a=1'],
    ['application/octet-stream', Buffer.from([0, 255, 1, 2])], ['application/octet-stream', Buffer.alloc(0)], ['application/zip', Buffer.from('PK\x03\x04garbage')],
    ['multipart/form-data; boundary=x', '--x\r\n\r\n--x--'], ['multipart/form-data', 'no boundary'], ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="x"; filename="x.npy"\r\n\r\n\x93NUMPY\x01\x00'],
    ['text/csv', '\u0000\u0001,\u0002\n'], ['text/csv', '"unterminated'], ['text/csv', 'a,b\n1,2\n"x'], ['text/csv; charset=utf-8', 'a\n1\n'],
  ];
  const urls = ['/v1/datasets', '/v1/datasets?name=f', '/v1/datasets?name=f&label=a', '/v1/datasets?name=f&features=zz', '/v1/datasets?bogus=1', '/v1/datasets/builtin-iris/split', '/v1/datasets/ds_0000000000000000/split'];
  for (const url of urls) {
    for (const [type, body] of payloads) {
      const res = await api.post(url).set('content-type', type).send(body);
      assert.ok(res.status < 500 && res.status >= 200, `${url} ${type} -> ${res.status} ${res.text.slice(0, 200)}`);
      if (res.status >= 400) assert.equal(typeof res.body.error?.code, 'string', `${url} ${type}: ${res.text.slice(0, 200)}`);
    }
  }
  const tmp = paths.tmp(stack.config.dataDir);
  assert.deepEqual(fs.existsSync(tmp) ? fs.readdirSync(tmp) : [], []);
});
