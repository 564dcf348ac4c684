import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from './wasm-training-kernels.ts';
import { installFastOrthogonal } from './fast-orthogonal.ts';
import { installTidyInitializers } from './layer-weights.ts';
import { startWasmBackend, wasmThreadsFromEnv, type WasmThreading } from './wasm-threads.ts';

const require = createRequire(import.meta.url);

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** The tfjs backend name in use ("tensorflow" for both native packages). */
  backend: string;
  /** What it runs on, in words. */
  device: string;
  /** Why this one was chosen: TF_BACKEND, or why each faster one was passed over. */
  reason: string;
  /** wasm only: XNNPACK threads, SIMD, and the binary loaded. */
  wasm?: WasmThreading;
}

/** The order backends are tried in, fastest first. */
export const BACKEND_ORDER: BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

/** The npm package each backend needs (cpu is part of @tensorflow/tfjs). */
export const BACKEND_PACKAGES: Record<BackendName, string | null> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: null,
};

const DEVICES: Record<BackendName, string> = {
  'tensorflow-gpu': 'gpu (CUDA, libtensorflow)',
  tensorflow: 'cpu (libtensorflow)',
  wasm: 'cpu (WebAssembly)',
  cpu: 'cpu (pure JavaScript)',
};

/**
 * What choosing a backend touches, injectable so the chooser can be tested with any package
 * present, absent or broken.
 */
export interface BackendLoaders {
  /** Loads a package (require): throws when it is absent or cannot load (no libtensorflow...). */
  requirePackage: (name: string) => unknown;
  /** Makes a registered tfjs backend current (tf.setBackend): false when it failed to start. */
  setBackend: (name: 'tensorflow' | 'cpu') => Promise<boolean>;
  /** Starts the wasm backend, its package loaded, with this many threads (startWasmBackend). */
  startWasm: (threads: number) => Promise<{ ok: boolean; threading?: WasmThreading }>;
}

export const realLoaders: BackendLoaders = {
  requirePackage: (name) => require(name),
  setBackend: (name) => tf.setBackend(name),
  startWasm: (threads) => startWasmBackend(threads),
};

/** TF_BACKEND's value as a backend name (also: gpu, node-gpu, tfjs-node-gpu, node, tfjs-node); throws on anything else. */
export function parseBackendName(raw: string): BackendName {
  const v = raw.trim().toLowerCase();
  const alias: Record<string, BackendName> = {
    gpu: 'tensorflow-gpu', 'node-gpu': 'tensorflow-gpu', 'tfjs-node-gpu': 'tensorflow-gpu',
    node: 'tensorflow', 'tfjs-node': 'tensorflow', native: 'tensorflow',
  };
  const name = (alias[v] ?? v) as BackendName;
  if (!BACKEND_ORDER.includes(name)) throw new Error(`TF_BACKEND=${raw} is not one of ${BACKEND_ORDER.join(', ')}`);
  return name;
}

/** Why a package did not load, in a few words: absent, or present and broken. */
function whyNotLoaded(pkg: string, err: unknown): string {
  const e = err as { code?: string; message?: string };
  const message = String(e?.message ?? err).split('\n')[0]!;
  if (e?.code === 'MODULE_NOT_FOUND' && message.includes(`'${pkg}'`)) return `${pkg} is not installed`;
  return `${pkg} is installed but failed to load (${message})`;
}

type Attempt = { info: BackendInfo; why?: undefined } | { info?: undefined; why: string };

async function attempt(name: BackendName, loaders: BackendLoaders, threads: number): Promise<Attempt> {
  const pkg = BACKEND_PACKAGES[name];
  if (pkg) {
    try {
      loaders.requirePackage(pkg);
    } catch (err) {
      return { why: whyNotLoaded(pkg, err) };
    }
  }
  const info: BackendInfo = { backend: name === 'tensorflow-gpu' ? 'tensorflow' : name, device: DEVICES[name], reason: '' };
  if (name === 'wasm') {
    const started = await loaders.startWasm(threads);
    if (!started.ok) return { why: `${pkg} is installed but the wasm backend failed to start` };
    if (started.threading) {
      info.wasm = started.threading;
      info.device = `cpu (WebAssembly, ${started.threading.simd ? 'SIMD' : 'no SIMD'}, ${started.threading.threads} thread${started.threading.threads === 1 ? '' : 's'})`;
    }
    return { info };
  }
  const ok = await loaders.setBackend(name === 'cpu' ? 'cpu' : 'tensorflow');
  if (!ok) return { why: pkg ? `${pkg} loaded but its backend failed to start` : 'the cpu backend failed to start' };
  return { info };
}

/**
 * Picks the best TensorFlow.js backend present: tfjs-node-gpu, tfjs-node, wasm, cpu, in that
 * order. `forced` (TF_BACKEND) names one of them and fails loudly when it cannot load. The
 * reason says which was forced, or why each faster one was passed over. No caching and no
 * kernel registration: see initBackend.
 */
export async function chooseBackend(opts: { forced?: string; threads?: number; loaders?: Partial<BackendLoaders> } = {}): Promise<BackendInfo> {
  const loaders: BackendLoaders = { ...realLoaders, ...opts.loaders };
  const threads = opts.threads ?? 1;
  if (opts.forced) {
    const name = parseBackendName(opts.forced);
    const got = await attempt(name, loaders, threads);
    if (!got.info) throw new Error(`TF_BACKEND=${opts.forced} was asked for but could not load: ${got.why}`);
    return { ...got.info, reason: `TF_BACKEND=${opts.forced}` };
  }
  const passed: string[] = [];
  for (const name of BACKEND_ORDER) {
    const got = await attempt(name, loaders, threads);
    if (got.info) {
      const loaded = BACKEND_PACKAGES[name] ? `${BACKEND_PACKAGES[name]} loaded` : 'the pure-JavaScript backend, always present';
      return { ...got.info, reason: passed.length ? `${loaded}; ${passed.join('; ')}` : loaded };
    }
    passed.push(got.why);
  }
  throw new Error(`no TensorFlow.js backend could start: ${passed.join('; ')}`);
}

let chosen: Promise<BackendInfo> | undefined;

/**
 * Picks the backend (chooseBackend) once per process and readies it: on wasm, the training
 * kernels (unless `stockKernels`, or TF_WASM_KERNELS=stock, for measuring against stock tfjs)
 * and TF_WASM_THREADS threads; on every backend, the fast Orthogonal initializer.
 * `forced` is TF_BACKEND. Later calls return the first call's result.
 */
export function initBackend(forced?: string, opts: { threads?: number; stockKernels?: boolean; loaders?: Partial<BackendLoaders> } = {}): Promise<BackendInfo> {
  chosen ??= (async () => {
    tf.env().set('PROD', true);
    const threads = opts.threads ?? wasmThreadsFromEnv();
    const info = await chooseBackend({ forced: forced || undefined, threads, loaders: opts.loaders });
    await tf.ready();
    // Kernels that make wasm train every layer type (and fast); an Orthogonal initializer that
    // builds recurrent layers in milliseconds instead of seconds, and initializers that free
    // their intermediate tensors, whatever the backend.
    const stock = opts.stockKernels ?? process.env.TF_WASM_KERNELS === 'stock';
    if (info.backend === 'wasm' && !stock) registerWasmTrainingKernels();
    if (info.backend === 'wasm' && stock) info.reason += ' (stock wasm kernels: TF_WASM_KERNELS=stock)';
    installFastOrthogonal();
    installTidyInitializers();
    return info;
  })();
  // A failed choice is not cached: the caller sees the error, a later call tries again.
  chosen.catch(() => { chosen = undefined; });
  return chosen;
}

/**
 * Kernels the gradients of these layers need that stock tfjs-backend-wasm 4.22 lacks: present
 * once registerWasmTrainingKernels has run. Names are compared lower-case without underscores
 * ("Conv2D", "conv_2d").
 */
const WASM_TRAINING_KERNELS: Record<string, string[]> = {
  conv1d: ['Conv2DBackpropFilter'],
  conv2d: ['Conv2DBackpropFilter'],
  conv2dtranspose: ['Conv2DBackpropFilter'],
  separableconv2d: ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput'],
  depthwiseconv2d: ['DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput'],
  embedding: ['UnsortedSegmentSum'],
};

const normalise = (name: string) => name.toLowerCase().replace(/_/g, '');

/** Layer class names in a model spec: native `type`s and Keras/tfjs `class_name`s, nested ones included. */
export function layerClassNames(spec: unknown): Set<string> {
  const names = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      const rec = node as Record<string, unknown>;
      for (const key of ['class_name', 'type']) if (typeof rec[key] === 'string') names.add(normalise(rec[key] as string));
      for (const value of Object.values(rec)) walk(value);
    }
  };
  walk(spec);
  return names;
}

const MISSING_WASM_KERNEL = /Kernel '\w+' not registered for backend 'wasm'/;

async function onCpu<T>(fn: () => Promise<T>, back: string): Promise<T> {
  await tf.setBackend('cpu');
  try {
    return await fn();
  } finally {
    await tf.setBackend(back);
  }
}

/** The gradient kernels the spec's layers need that are not registered on wasm (none once ours are). */
export function missingWasmTrainingKernels(spec: unknown): string[] {
  const needed = new Set([...layerClassNames(spec)].flatMap((n) => WASM_TRAINING_KERNELS[n] ?? []));
  return [...needed].filter((k) => !tf.getKernel(k, 'wasm'));
}

/**
 * Runs `fn` on a backend that can train the model: the chosen one, or cpu when the
 * chosen one is wasm and a kernel the model's gradients need is really missing there
 * (registerWasmTrainingKernels, run by initBackend, adds them all). A wasm kernel found
 * missing at run time (before anything was reported) reruns on cpu.
 */
export async function withTrainingBackend<T>(spec: unknown, fn: () => Promise<T>): Promise<T> {
  const base = tf.getBackend();
  if (base !== 'wasm') return fn();
  if (missingWasmTrainingKernels(spec).length > 0) return onCpu(fn, base);
  try {
    return await fn();
  } catch (err) {
    if (!MISSING_WASM_KERNEL.test((err as Error)?.message ?? '')) throw err;
    return onCpu(fn, base);
  }
}
