/**
 * UnsortedSegmentSum on wasm (the gradient of Gather, so of every Embedding layer): one pass
 * over the rows in wasm memory, adding each into its segment. O(rows x width), where a one-hot
 * matmul would cost rows x segments x width (the vocabulary size times more).
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { Info, KernelArgs } from './wasm-kernel-utils.ts';
import { cpuKernelOnWasm } from './wasm-cpu-fallback.ts';

export function unsortedSegmentSum(args: KernelArgs): Info | Info[] {
  const { inputs, backend, attrs } = args;
  const { x, segmentIds } = inputs as { x: Info; segmentIds: Info };
  const numSegments = attrs.numSegments as number;
  const ids = segmentIds.shape.reduce((a, b) => a * b, 1);
  const total = x.shape.reduce((a, b) => a * b, 1);
  const leading = x.shape.slice(0, segmentIds.shape.length);
  const fits = leading.length === segmentIds.shape.length && leading.every((d, i) => d === segmentIds.shape[i]);
  if ((x.dtype !== 'float32' && x.dtype !== 'int32') || !fits) return cpuKernelOnWasm('UnsortedSegmentSum', args);
  const wasm = backend as BackendWasm;
  const width = ids === 0 ? 0 : total / ids;
  const out = wasm.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
  // Views are taken after makeOutput: an allocation can grow (and detach) the wasm heap.
  const dst = wasm.typedArrayFromHeap(out) as Float32Array | Int32Array;
  const src = wasm.typedArrayFromHeap(x) as Float32Array | Int32Array;
  const seg = wasm.typedArrayFromHeap(segmentIds);
  dst.fill(0);
  for (let r = 0; r < ids; r++) {
    const s = seg[r]!;
    // Ids outside [0, numSegments) are dropped, as in TensorFlow.
    if (!(s >= 0 && s < numSegments)) continue;
    const d = s * width;
    const o = r * width;
    for (let k = 0; k < width; k++) dst[d + k]! += src[o + k]!;
  }
  return out;
}
