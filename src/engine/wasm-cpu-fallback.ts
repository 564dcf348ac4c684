/**
 * The safety net: a wasm kernel that runs the cpu backend's kernel on copies of its inputs and
 * copies the outputs back into wasm memory. Slow, but it means no kernel the cpu backend has is
 * ever missing on wasm (a model never fails, or leaves wasm, for want of one).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { Info, KernelArgs } from './wasm-kernel-utils.ts';

/** Kernels no wasm tensor can feed (complex64 is not a wasm dtype) or that draw to a canvas. */
const NOT_FOR_WASM = new Set(['Complex', 'ComplexAbs', 'Real', 'Imag', 'FFT', 'IFFT', 'RFFT', 'IRFFT', 'Draw']);

export function cpuKernelOnWasm(name: string, { inputs, backend, attrs }: KernelArgs): Info | Info[] {
  const kernel = tf.getKernel(name, 'cpu');
  if (!kernel) throw new Error(`Kernel '${name}' not registered for backend 'wasm' (nor 'cpu')`);
  const cpu = tf.findBackend('cpu');
  if (!cpu) throw new Error(`Kernel '${name}' needs the cpu backend, which could not start`);
  const wasm = backend as BackendWasm;
  // Some kernels (Einsum, AddN, Concat...) take their inputs as an array: keep the container's kind.
  const cpuInputs: Record<string, Info> = (Array.isArray(inputs) ? [] : {}) as Record<string, Info>;
  for (const [key, info] of Object.entries(inputs)) {
    if (!info) continue;
    cpuInputs[key] = { dataId: cpu.write(wasm.readSync(info.dataId), info.shape, info.dtype), shape: info.shape, dtype: info.dtype };
  }
  try {
    const out = kernel.kernelFunc({ inputs: cpuInputs, backend: cpu, attrs } as unknown as Parameters<tf.KernelFunc>[0]);
    const outs = (Array.isArray(out) ? out : [out]) as Info[];
    const copied = outs.map((o) => {
      const values = cpu.readSync(o.dataId);
      cpu.disposeData(o.dataId);
      return wasm.makeOutput(o.shape, o.dtype, undefined, values);
    });
    return Array.isArray(out) ? copied : copied[0]!;
  } finally {
    for (const info of Object.values(cpuInputs)) cpu.disposeData(info.dataId);
  }
}

/** Registers the cpu fallback for every kernel the cpu backend has and wasm lacks; returns their names. */
export function registerCpuFallbacks(): string[] {
  const have = new Set(tf.getKernelsForBackend('wasm').map((k) => k.kernelName));
  const added: string[] = [];
  for (const { kernelName } of tf.getKernelsForBackend('cpu')) {
    if (have.has(kernelName) || NOT_FOR_WASM.has(kernelName)) continue;
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc: ((args: KernelArgs) => cpuKernelOnWasm(kernelName, args)) as unknown as tf.KernelFunc,
    });
    added.push(kernelName);
  }
  return added;
}
