/**
 * The compiled kernels of src/engine/assembly/dense-kernels.ts (AssemblyScript, SIMD): one
 * WebAssembly instance per call of loadDenseKernels, with its own memory. Rebuild the .wasm
 * with `npm run build:wasm` after changing the source (a test checks it is current).
 */
import fs from 'node:fs';

export interface DenseKernels {
  memory: WebAssembly.Memory;
  heapBase(): number;
  gemmNN(a: number, b: number, c: number, M: number, K: number, N: number, acc: number): void;
  gemmTN(a: number, b: number, c: number, M: number, K: number, N: number, acc: number): void;
  gemmNT(a: number, b: number, c: number, M: number, N: number, K: number): void;
  biasActivation(z: number, bias: number, M: number, N: number, act: number): void;
  activationGrad(d: number, a: number, n: number, act: number): void;
  columnSums(d: number, out: number, M: number, N: number): void;
  softmaxCrossEntropy(z: number, y: number, probs: number, dz: number, M: number, N: number, sparse: number, wts: number, stats: number): void;
  sigmoidCrossEntropy(z: number, y: number, probs: number, dz: number, M: number, N: number, wts: number, stats: number): void;
  meanSquaredError(a: number, y: number, d: number, M: number, N: number, wts: number, stats: number): void;
  adam(w: number, m: number, v: number, g: number, n: number, b1: number, c1: number, b2: number, c2: number, d1: number, d2: number, eps: number, step: number): void;
  sgd(w: number, g: number, n: number, step: number): void;
  momentum(w: number, acc: number, g: number, n: number, m: number, step: number, nesterov: number): void;
  dropout(x: number, mask: number, n: number, rate: number, seed: number): void;
  multiply(d: number, mask: number, n: number): void;
  rmsprop(w: number, ms: number, mom: number, g: number, n: number, decay: number, c: number, momentum: number, lr: number, eps: number): void;
}

/** Activation codes of biasActivation / activationGrad. */
export const ACTIVATION_CODES = { linear: 0, relu: 1, sigmoid: 2, tanh: 3 } as const;

export const DENSE_KERNELS_WASM = new URL('./assembly/dense-kernels.wasm', import.meta.url);

let compiled: WebAssembly.Module | null | undefined;

function module(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = fs.readFileSync(DENSE_KERNELS_WASM);
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

/** Whether this WebAssembly runs the kernels (it needs SIMD; without it the module does not validate). */
export function denseKernelsSupported(): boolean {
  return module() !== null;
}

/** A fresh instance, or null where this WebAssembly has no SIMD. */
export function loadDenseKernels(): DenseKernels | null {
  const m = module();
  return m ? (new WebAssembly.Instance(m, {}).exports as unknown as DenseKernels) : null;
}
