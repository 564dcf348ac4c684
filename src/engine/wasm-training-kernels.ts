/**
 * Makes the wasm backend train every layer type, fast and right: the gradient kernels stock
 * tfjs-backend-wasm 4.22 lacks (composed of its XNNPACK kernels, or loops over wasm memory),
 * its slow Conv2DBackpropInput and transposed matmuls put on the XNNPACK paths, its wrong
 * MaxPool(3D)Grad and Conv3DBackpropInputV2 replaced, and for anything else the cpu backend
 * has, that kernel run on copied data. Adam's update fused into one kernel per variable, and
 * the tape's saved-tensor clones sharing data instead of copying it (wasm-fast-clone.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmKernel, stockKernel, type Kernel } from './wasm-kernel-utils.ts';
import { conv2DBackpropFilter, conv2DBackpropInput, depthwiseConv2dNativeBackpropFilter, depthwiseConv2dNativeBackpropInput } from './wasm-conv-grads.ts';
import { unsortedSegmentSum } from './wasm-segment-sum.ts';
import { batchMatMul, fusedMatMul } from './wasm-matmul.ts';
import { conv3DBackpropInputV2, maxPool3DGrad, maxPoolGrad } from './wasm-kernel-fixes.ts';
import { registerCpuFallbacks } from './wasm-cpu-fallback.ts';
import { ADAM_KERNEL, adamUpdate, installFusedAdam } from './wasm-fused-adam.ts';
import { installSharedClone, uninstallSharedClone } from './wasm-fast-clone.ts';

/** Kernels added or replaced with a fast implementation, by name. */
export const FAST_WASM_KERNELS: Record<string, Kernel> = {
  Conv2DBackpropInput: conv2DBackpropInput,
  Conv2DBackpropFilter: conv2DBackpropFilter,
  DepthwiseConv2dNativeBackpropFilter: depthwiseConv2dNativeBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseConv2dNativeBackpropInput,
  UnsortedSegmentSum: unsortedSegmentSum,
  BatchMatMul: batchMatMul,
  _FusedMatMul: fusedMatMul,
  // Stock kernels that give wrong gradients (see wasm-kernel-fixes.ts).
  MaxPoolGrad: maxPoolGrad,
  MaxPool3DGrad: maxPool3DGrad,
  Conv3DBackpropInputV2: conv3DBackpropInputV2,
  // Not a tfjs kernel: Adam's whole update for one variable (wasm-fused-adam.ts).
  [ADAM_KERNEL]: adamUpdate,
};

let installed: { fast: string[]; cpuFallback: string[] } | undefined;

/**
 * Registers the kernels on the 'wasm' backend (idempotent). Call it once the wasm package is
 * loaded; the stock kernels used by the compositions are captured first.
 */
export function registerWasmTrainingKernels(): { fast: string[]; cpuFallback: string[] } {
  if (installed) return installed;
  if (!tf.getKernel('Conv2D', 'wasm')) throw new Error('the wasm backend is not loaded: import @tensorflow/tfjs-backend-wasm first');
  for (const name of ['Conv2D', 'Conv2DBackpropInput', 'DepthwiseConv2dNative', 'Transpose', 'Reshape', 'PadV2', 'Slice', 'Sum', 'Reverse', 'BatchMatMul', '_FusedMatMul']) stockKernel(name);
  for (const [name, fn] of Object.entries(FAST_WASM_KERNELS)) setWasmKernel(name, fn);
  installFusedAdam();
  installSharedClone();
  installed = { fast: Object.keys(FAST_WASM_KERNELS), cpuFallback: registerCpuFallbacks() };
  return installed;
}

/** Puts the stock wasm kernels back (for measuring against them): ours out, stock ones in again. */
export function unregisterWasmTrainingKernels(): void {
  if (!installed) return;
  uninstallSharedClone();
  for (const name of [...installed.fast, ...installed.cpuFallback]) {
    if (tf.getKernel(name, 'wasm')) tf.unregisterKernel(name, 'wasm');
    const prior = installed.fast.includes(name) ? stockKernel(name) : undefined;
    if (prior) tf.registerKernel(prior);
  }
  installed = undefined;
}

/** Whether the engine's kernels are in (not stock tfjs-wasm, TF_WASM_KERNELS=stock). */
export function wasmTrainingKernelsRegistered(): boolean {
  return installed !== undefined;
}
