import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from './wasm-training-kernels.ts';
import { installFastOrthogonal } from './fast-orthogonal.ts';

const require = createRequire(import.meta.url);

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** The tfjs backend name in use ("tensorflow" for both native packages). */
  backend: string;
  /** What it runs on, in words. */
  device: string;
  /** Why this one was chosen. */
  reason: string;
}

let chosen: BackendInfo | undefined;

/** Tries to load an optional package; false when it is absent or cannot load (no libtensorflow). */
function tryRequire(name: string): boolean {
  try {
    require(name);
    return true;
  } catch {
    return false;
  }
}

const ORDER: BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

async function activate(name: BackendName): Promise<BackendInfo | undefined> {
  if (name === 'tensorflow-gpu') {
    if (!tryRequire('@tensorflow/tfjs-node-gpu')) return undefined;
    if (!(await tf.setBackend('tensorflow'))) return undefined;
    return { backend: 'tensorflow', device: 'gpu (CUDA, libtensorflow)', reason: '@tensorflow/tfjs-node-gpu is installed' };
  }
  if (name === 'tensorflow') {
    if (!tryRequire('@tensorflow/tfjs-node')) return undefined;
    if (!(await tf.setBackend('tensorflow'))) return undefined;
    return { backend: 'tensorflow', device: 'cpu (libtensorflow)', reason: '@tensorflow/tfjs-node is installed' };
  }
  if (name === 'wasm') {
    if (!tryRequire('@tensorflow/tfjs-backend-wasm')) return undefined;
    if (!(await tf.setBackend('wasm'))) return undefined;
    return { backend: 'wasm', device: 'cpu (WebAssembly)', reason: 'no native TensorFlow package is installed' };
  }
  if (!(await tf.setBackend('cpu'))) return undefined;
  return { backend: 'cpu', device: 'cpu (pure JavaScript)', reason: 'no faster backend could load' };
}

/**
 * Picks the best TensorFlow.js backend present: tfjs-node-gpu, tfjs-node, wasm, cpu.
 * `forced` (TF_BACKEND) names one of them and fails loudly when it cannot load.
 */
export async function initBackend(forced?: string): Promise<BackendInfo> {
  if (chosen) return chosen;
  tf.env().set('PROD', true);
  if (forced) {
    const name = (forced === 'node-gpu' || forced === 'gpu' ? 'tensorflow-gpu' : forced === 'node' ? 'tensorflow' : forced) as BackendName;
    if (!ORDER.includes(name)) throw new Error(`TF_BACKEND=${forced} is not one of ${ORDER.join(', ')}`);
    const info = await activate(name);
    if (!info) throw new Error(`TF_BACKEND=${forced} was asked for but could not load`);
    chosen = { ...info, reason: `TF_BACKEND=${forced}` };
  } else {
    for (const name of ORDER) {
      const info = await activate(name);
      if (info) {
        chosen = info;
        break;
      }
    }
  }
  await tf.ready();
  // Kernels that make wasm train every layer type (and fast); an Orthogonal initializer that
  // builds recurrent layers in milliseconds instead of seconds, whatever the backend.
  if (chosen!.backend === 'wasm') registerWasmTrainingKernels();
  installFastOrthogonal();
  return chosen!;
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
