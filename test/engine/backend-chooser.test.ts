// The backend chooser with each package present, absent or broken (fake loaders: nothing is
// really loaded), TF_BACKEND forcing each backend, and the reason strings. Plus the real thing:
// initBackend on this machine (no native package) picks wasm, SIMD, and reports why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { BACKEND_PACKAGES, chooseBackend, initBackend, parseBackendName, type BackendLoaders } from '../../src/engine/backend.ts';
import { wasmThreadsFromEnv } from '../../src/engine/wasm-threads.ts';

const GPU = BACKEND_PACKAGES['tensorflow-gpu']!;
const NODE = BACKEND_PACKAGES.tensorflow!;
const WASM = BACKEND_PACKAGES.wasm!;

type PackageState = 'present' | 'absent' | 'broken';

/** Loaders for a world where each package is present, absent or broken, recording what was called. */
function world(packages: Partial<Record<string, PackageState>>, opts: { wasmStarts?: boolean; cpuStarts?: boolean } = {}) {
  const calls: string[] = [];
  const loaders: BackendLoaders = {
    requirePackage: (name) => {
      calls.push(`require ${name}`);
      const state = packages[name] ?? 'absent';
      if (state === 'absent') throw Object.assign(new Error(`Cannot find module '${name}'\nRequire stack:\n- x.js`), { code: 'MODULE_NOT_FOUND' });
      if (state === 'broken') throw new Error('libtensorflow.so.2: cannot open shared object file: No such file or directory');
      return {};
    },
    setBackend: async (name) => {
      calls.push(`setBackend ${name}`);
      return name === 'cpu' ? opts.cpuStarts ?? true : true;
    },
    startWasm: async (threads) => {
      calls.push(`startWasm ${threads}`);
      return { ok: opts.wasmStarts ?? true, threading: { threads, simd: true, binary: 'tfjs-backend-wasm-simd.wasm' } };
    },
  };
  return { loaders, calls };
}

test('native gpu package present: tensorflow-gpu, nothing else tried', async () => {
  const w = world({ [GPU]: 'present', [NODE]: 'present', [WASM]: 'present' });
  const info = await chooseBackend({ loaders: w.loaders });
  assert.equal(info.backend, 'tensorflow');
  assert.match(info.device, /gpu/);
  assert.equal(info.reason, `${GPU} loaded`);
  assert.deepEqual(w.calls, [`require ${GPU}`, 'setBackend tensorflow']);
});

test('only tfjs-node: tensorflow on cpu, and the reason says the gpu package is not installed', async () => {
  const w = world({ [NODE]: 'present', [WASM]: 'present' });
  const info = await chooseBackend({ loaders: w.loaders });
  assert.equal(info.backend, 'tensorflow');
  assert.equal(info.device, 'cpu (libtensorflow)');
  assert.equal(info.reason, `${NODE} loaded; ${GPU} is not installed`);
});

test('no native package: wasm, with its threads and SIMD in the device', async () => {
  const w = world({ [WASM]: 'present' });
  const info = await chooseBackend({ loaders: w.loaders, threads: 1 });
  assert.equal(info.backend, 'wasm');
  assert.equal(info.device, 'cpu (WebAssembly, SIMD, 1 thread)');
  assert.equal(info.reason, `${WASM} loaded; ${GPU} is not installed; ${NODE} is not installed`);
  assert.deepEqual(info.wasm, { threads: 1, simd: true, binary: 'tfjs-backend-wasm-simd.wasm' });
  assert.deepEqual(w.calls, [`require ${GPU}`, `require ${NODE}`, `require ${WASM}`, 'startWasm 1']);
});

test('a native package that is installed but cannot load (no libtensorflow) is passed over, with its error', async () => {
  const w = world({ [GPU]: 'broken', [NODE]: 'broken', [WASM]: 'present' });
  const info = await chooseBackend({ loaders: w.loaders });
  assert.equal(info.backend, 'wasm');
  assert.match(info.reason, new RegExp(`${GPU} is installed but failed to load \\(libtensorflow\\.so\\.2: cannot open`));
  assert.match(info.reason, new RegExp(`${NODE} is installed but failed to load`));
});

test('wasm absent: cpu', async () => {
  const w = world({});
  const info = await chooseBackend({ loaders: w.loaders });
  assert.equal(info.backend, 'cpu');
  assert.equal(info.device, 'cpu (pure JavaScript)');
  assert.equal(info.reason, `the pure-JavaScript backend, always present; ${GPU} is not installed; ${NODE} is not installed; ${WASM} is not installed`);
});

test('wasm present but failing to start: cpu, and the reason says so', async () => {
  const w = world({ [WASM]: 'present' }, { wasmStarts: false });
  const info = await chooseBackend({ loaders: w.loaders });
  assert.equal(info.backend, 'cpu');
  assert.match(info.reason, new RegExp(`${WASM} is installed but the wasm backend failed to start`));
  assert.deepEqual(w.calls.slice(-2), ['startWasm 1', 'setBackend cpu']);
});

test('nothing can start: a loud error listing why', async () => {
  const w = world({}, { cpuStarts: false });
  await assert.rejects(chooseBackend({ loaders: w.loaders }), /no TensorFlow.js backend could start: .*not installed.*the cpu backend failed to start/);
});

test('TF_BACKEND forces each backend, skipping faster ones, with reason TF_BACKEND=...', async () => {
  const all = { [GPU]: 'present', [NODE]: 'present', [WASM]: 'present' } as const;
  const cases: Array<[string, string, string]> = [
    ['tensorflow-gpu', 'tensorflow', `require ${GPU}`],
    ['gpu', 'tensorflow', `require ${GPU}`],
    ['tensorflow', 'tensorflow', `require ${NODE}`],
    ['node', 'tensorflow', `require ${NODE}`],
    ['wasm', 'wasm', `require ${WASM}`],
    ['cpu', 'cpu', 'setBackend cpu'],
  ];
  for (const [forced, backend, first] of cases) {
    const w = world(all);
    const info = await chooseBackend({ forced, loaders: w.loaders, threads: 2 });
    assert.equal(info.backend, backend, forced);
    assert.equal(info.reason, `TF_BACKEND=${forced}`);
    assert.equal(w.calls[0], first, `${forced} tries only its own package`);
    if (forced === 'tensorflow-gpu') assert.match(info.device, /gpu/);
    if (forced === 'tensorflow') assert.equal(info.device, 'cpu (libtensorflow)');
    if (forced === 'wasm') assert.deepEqual(w.calls, [`require ${WASM}`, 'startWasm 2']);
  }
});

test('TF_BACKEND naming a backend that cannot load fails loudly, never falls back', async () => {
  await assert.rejects(chooseBackend({ forced: 'tensorflow-gpu', loaders: world({ [NODE]: 'present', [WASM]: 'present' }).loaders }),
    new RegExp(`TF_BACKEND=tensorflow-gpu was asked for but could not load: ${GPU} is not installed`));
  await assert.rejects(chooseBackend({ forced: 'tensorflow', loaders: world({ [NODE]: 'broken', [WASM]: 'present' }).loaders }),
    /TF_BACKEND=tensorflow was asked for but could not load: @tensorflow\/tfjs-node is installed but failed to load \(libtensorflow/);
  await assert.rejects(chooseBackend({ forced: 'wasm', loaders: world({}).loaders }), /TF_BACKEND=wasm was asked for but could not load: @tensorflow\/tfjs-backend-wasm is not installed/);
  await assert.rejects(chooseBackend({ forced: 'wasm', loaders: world({ [WASM]: 'present' }, { wasmStarts: false }).loaders }), /failed to start/);
  await assert.rejects(chooseBackend({ forced: 'cpu', loaders: world({}, { cpuStarts: false }).loaders }), /TF_BACKEND=cpu was asked for but could not load: the cpu backend failed to start/);
  await assert.rejects(chooseBackend({ forced: 'webgpu', loaders: world({}).loaders }), /TF_BACKEND=webgpu is not one of tensorflow-gpu, tensorflow, wasm, cpu/);
});

test('backend names and TF_WASM_THREADS parse strictly', () => {
  assert.equal(parseBackendName(' Node-GPU '), 'tensorflow-gpu');
  assert.equal(parseBackendName('tfjs-node'), 'tensorflow');
  assert.throws(() => parseBackendName('metal'), /not one of/);
  assert.equal(wasmThreadsFromEnv(undefined), 1);
  assert.equal(wasmThreadsFromEnv(''), 1);
  assert.equal(wasmThreadsFromEnv('2'), 2);
  assert.ok(wasmThreadsFromEnv('auto') >= 1);
  assert.throws(() => wasmThreadsFromEnv('0'), /TF_WASM_THREADS=0/);
  assert.throws(() => wasmThreadsFromEnv('9'), /from 1 to 8/);
  assert.throws(() => wasmThreadsFromEnv('two'), /TF_WASM_THREADS=two/);
});

test('on this machine (no native package installed): wasm with SIMD, single-threaded, kernels in', async () => {
  const info = await initBackend(process.env.TF_BACKEND === 'wasm' ? 'wasm' : undefined, { threads: 1 });
  if (process.env.TF_BACKEND && process.env.TF_BACKEND !== 'wasm') return; // forced elsewhere
  let nativePresent = true;
  try { (await import('node:module')).createRequire(import.meta.url)(NODE); } catch { nativePresent = false; }
  if (nativePresent) return; // a machine with libtensorflow picks it: covered by the fakes above
  assert.equal(info.backend, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(info.wasm?.simd, true);
  assert.equal(info.wasm?.threads, 1);
  assert.equal(info.wasm?.binary, 'tfjs-backend-wasm-simd.wasm');
  assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'), 'training kernels registered');
  assert.strictEqual(await initBackend('cpu'), info, 'chosen once per process');
});
