/**
 * Replacements for stock wasm gradient kernels that give wrong results in tfjs 4.22:
 *
 * - MaxPoolGrad / MaxPool3DGrad start their running max at FLT_MIN (the smallest positive
 *   float) instead of -inf, so a window whose values are all <= 0 loses its gradient or sends
 *   it to the wrong element (any conv -> max pool without a ReLU between); and on ties they pick the last maximum where cpu (and TF) pick the
 *   first. Here: one pass over wasm memory, first strict maximum of each window, as cpu does.
 * - Conv3DBackpropInputV2 is wrong (even for one image, stride 1): the cpu kernel runs instead
 *   (Conv3D is no layer type of the spec, so its speed matters little).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type Info, type KernelArgs } from './wasm-kernel-utils.ts';
import { cpuKernelOnWasm } from './wasm-cpu-fallback.ts';

interface PoolGeometry {
  batch: number; channels: number;
  inD: number; inH: number; inW: number;
  outD: number; outH: number; outW: number;
  strideD: number; strideH: number; strideW: number;
  dilD: number; dilH: number; dilW: number;
  filtD: number; filtH: number; filtW: number;
  padFront: number; padTop: number; padLeft: number;
}

/** dx of a max pool: each window's dy goes to the window's first strictly largest input. */
function maxPoolGradNDHWC(backend: BackendWasm, dy: Info, input: Info, g: PoolGeometry): Info {
  const dx = backend.makeOutput(input.shape, 'float32');
  // Views after makeOutput: an allocation can grow (and detach) the wasm heap.
  const out = backend.typedArrayFromHeap(dx) as Float32Array;
  const x = backend.typedArrayFromHeap(input) as Float32Array;
  const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
  out.fill(0);
  const C = g.channels;
  const best = new Float32Array(C);
  const where = new Int32Array(C);
  let o = 0;
  for (let b = 0; b < g.batch; b++) {
    for (let od = 0; od < g.outD; od++) {
      for (let oh = 0; oh < g.outH; oh++) {
        for (let ow = 0; ow < g.outW; ow++, o += C) {
          best.fill(-Infinity);
          where.fill(-1);
          for (let fd = 0; fd < g.filtD; fd += g.dilD) {
            const d = od * g.strideD - g.padFront + fd;
            if (d < 0 || d >= g.inD) continue;
            for (let fh = 0; fh < g.filtH; fh += g.dilH) {
              const h = oh * g.strideH - g.padTop + fh;
              if (h < 0 || h >= g.inH) continue;
              for (let fw = 0; fw < g.filtW; fw += g.dilW) {
                const w = ow * g.strideW - g.padLeft + fw;
                if (w < 0 || w >= g.inW) continue;
                const base = (((b * g.inD + d) * g.inH + h) * g.inW + w) * C;
                for (let c = 0; c < C; c++) {
                  const v = x[base + c]!;
                  if (v > best[c]!) {
                    best[c] = v;
                    where[c] = base + c;
                  }
                }
              }
            }
          }
          for (let c = 0; c < C; c++) if (where[c]! >= 0) out[where[c]!]! += dyv[o + c]!;
        }
      }
    }
  }
  return dx;
}

type Pad = Parameters<typeof tf.backend_util.computePool2DInfo>[4];
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

export function maxPoolGrad(args: KernelArgs): Info | Info[] {
  const { inputs, backend, attrs } = args;
  const { dy, input } = inputs as { dy: Info; input: Info };
  if (input.dtype !== 'float32' || dy.dtype !== 'float32') return cpuKernelOnWasm('MaxPoolGrad', args);
  const i = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], attrs.filterSize as number, attrs.strides as number, 1, attrs.pad as Pad, attrs.dimRoundingMode as Rounding);
  return maxPoolGradNDHWC(backend as BackendWasm, dy, input, {
    batch: i.batchSize, channels: i.inChannels, inD: 1, inH: i.inHeight, inW: i.inWidth, outD: 1, outH: i.outHeight, outW: i.outWidth,
    strideD: 1, strideH: i.strideHeight, strideW: i.strideWidth, dilD: 1, dilH: i.dilationHeight, dilW: i.dilationWidth,
    filtD: 1, filtH: i.effectiveFilterHeight, filtW: i.effectiveFilterWidth, padFront: 0, padTop: i.padInfo.top, padLeft: i.padInfo.left,
  });
}

export function maxPool3DGrad(args: KernelArgs): Info | Info[] {
  const { inputs, backend, attrs } = args;
  const { dy, input } = inputs as { dy: Info; input: Info };
  if (input.dtype !== 'float32' || dy.dtype !== 'float32') return cpuKernelOnWasm('MaxPool3DGrad', args);
  const i = tf.backend_util.computePool3DInfo(input.shape as [number, number, number, number, number], attrs.filterSize as number, attrs.strides as number, 1, attrs.pad as 'same' | 'valid' | number, attrs.dimRoundingMode as Rounding);
  return maxPoolGradNDHWC(backend as BackendWasm, dy, input, {
    batch: i.batchSize, channels: i.inChannels, inD: i.inDepth, inH: i.inHeight, inW: i.inWidth, outD: i.outDepth, outH: i.outHeight, outW: i.outWidth,
    strideD: i.strideDepth, strideH: i.strideHeight, strideW: i.strideWidth, dilD: i.dilationDepth, dilH: i.dilationHeight, dilW: i.dilationWidth,
    filtD: i.effectiveFilterDepth, filtH: i.effectiveFilterHeight, filtW: i.effectiveFilterWidth,
    padFront: i.padInfo.front, padTop: i.padInfo.top, padLeft: i.padInfo.left,
  });
}

export function conv3DBackpropInputV2(args: KernelArgs): Info | Info[] {
  return cpuKernelOnWasm('Conv3DBackpropInputV2', args);
}
