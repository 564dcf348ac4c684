/**
 * BatchMatMul and _FusedMatMul on wasm at XNNPACK speed with transposes. The stock kernels use
 * XNNPACK's fully-connected operator only for a plain A x B with one batch; with transposeA or
 * transposeB (every Dense backward pass) they run a scalar loop about 13x slower. Transposing
 * the operand explicitly (a fast wasm kernel, O(size)) and then taking the plain path is far
 * cheaper than that O(m x n x k) penalty.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { runWasm, scoped, type Info, type KernelArgs } from './wasm-kernel-utils.ts';

/** The permutation swapping the last two axes. */
function swapLast(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}

function untransposed(name: 'BatchMatMul' | '_FusedMatMul') {
  return (args: KernelArgs): Info | Info[] => {
    const { inputs, backend, attrs } = args;
    if (!attrs.transposeA && !attrs.transposeB) return runWasm(backend, name, inputs, attrs);
    const { a, b } = inputs as { a: Info; b: Info };
    // Only float32 reaches the wasm matmul; leave anything else to its own error.
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return runWasm(backend, name, inputs, attrs);
    return scoped(backend as BackendWasm, (s) => {
      const at = attrs.transposeA ? s.transpose(a, swapLast(a.shape.length)) : a;
      const bt = attrs.transposeB ? s.transpose(b, swapLast(b.shape.length)) : b;
      return s.run(name, { ...inputs, a: at, b: bt }, { ...attrs, transposeA: false, transposeB: false });
    });
  };
}

export const batchMatMul = untransposed('BatchMatMul');
export const fusedMatMul = untransposed('_FusedMatMul');
