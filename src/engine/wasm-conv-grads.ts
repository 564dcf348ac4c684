/**
 * The convolution gradient kernels stock tfjs-backend-wasm 4.22 lacks, each composed of the
 * backend's own XNNPACK convolutions over transposed operands (so they run at conv speed):
 *
 * - Conv2DBackpropInput (stock, but a scalar loop ~15x slower than Conv2D): a Conv2D of the
 *   stride-dilated, padded dy with the filter reversed in space and its channels swapped.
 * - Conv2DBackpropFilter: dW[p,q,ci,co] = sum_{b,i,j} x[b, i*s+p-pt, j*s+q-pl, ci] dy[b,i,j,co] is a
 *   Conv2D of x with ci as the batch and b as the channels, filtered by dy (b as its input
 *   channels), dilated by the stride.
 * - DepthwiseConv2dNativeBackpropFilter: the same with (b, c) pairs as depthwise channels, the
 *   batch summed afterwards.
 * - DepthwiseConv2dNativeBackpropInput: a depthwise convolution of the stride-dilated, padded dy
 *   with the spatially reversed filter, the channel multiplier summed afterwards.
 *
 * Layouts or dtypes these do not cover (NCHW, non-float32) go to the stock or the cpu kernel.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { padOrCrop, runWasm, scoped, type Info, type KernelArgs, type Scope } from './wasm-kernel-utils.ts';
import { cpuKernelOnWasm } from './wasm-cpu-fallback.ts';

type Pad = Parameters<typeof tf.backend_util.computeConv2DInfo>[4];
type Rounding = 'floor' | 'round' | 'ceil' | undefined;
type Shape4 = [number, number, number, number];

/** An NHWC tensor with zeros inserted between rows and columns (stride s), as a transposed conv needs. */
function dilateSpatial(s: Scope, x: Info, sh: number, sw: number): Info {
  if (sh === 1 && sw === 1) return x;
  const [n, h, w, c] = x.shape as Shape4;
  const split = s.reshape(x, [n, h, 1, w, 1, c]);
  const padded = s.run('PadV2', { x: split }, { paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]], constantValue: 0 });
  return s.reshape(padded, [n, h * sh, w * sw, c]);
}

export function conv2DBackpropInput(args: KernelArgs): Info | Info[] {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  if (attrs.dataFormat === 'NCHW' || dy.dtype !== 'float32' || filter.dtype !== 'float32') return runWasm(backend, 'Conv2DBackpropInput', inputs, attrs);
  const inputShape = attrs.inputShape as Shape4;
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as Shape4, attrs.strides as number, 1, attrs.pad as Pad, attrs.dimRoundingMode as Rounding);
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, inHeight: h, inWidth: w, padInfo } = info;
  return scoped(backend as BackendWasm, (s) => {
    // dx[u] = sum_p dyz[u + pt - p] w[p]: a correlation of dyz, padded by fh - 1 - pt on top, with w reversed.
    const dyz = dilateSpatial(s, dy, sh, sw);
    const [, zh, zw] = dyz.shape as Shape4;
    const top = fh - 1 - padInfo.top;
    const left = fw - 1 - padInfo.left;
    const padded = padOrCrop(s, dyz, top, h + fh - 1 - top - zh, left, w + fw - 1 - left - zw);
    const flipped = s.transpose(s.run('Reverse', { x: filter }, { dims: [0, 1] }), [0, 1, 3, 2]); // [fh, fw, co, ci]
    return s.run('Conv2D', { x: padded, filter: flipped }, { strides: [1, 1], dilations: [1, 1], pad: 'valid', dataFormat: 'NHWC' });
  });
}

export function conv2DBackpropFilter(args: KernelArgs): Info | Info[] {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs as { x: Info; dy: Info };
  if (attrs.dataFormat === 'NCHW' || x.dtype !== 'float32' || dy.dtype !== 'float32') return cpuKernelOnWasm('Conv2DBackpropFilter', args);
  const info = tf.backend_util.computeConv2DInfo(x.shape as Shape4, attrs.filterShape as Shape4, attrs.strides as number, 1, attrs.pad as Pad, attrs.dimRoundingMode as Rounding);
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, outHeight: oh, outWidth: ow, inHeight: h, inWidth: w, padInfo } = info;
  return scoped(backend as BackendWasm, (s) => {
    // Output size fh = h + top + bottom - (oh - 1) * sh: the bottom/right padding (or crop) that gives it.
    const bottom = fh + (oh - 1) * sh - h - padInfo.top;
    const right = fw + (ow - 1) * sw - w - padInfo.left;
    const xc = padOrCrop(s, x, 0, Math.min(0, bottom), 0, Math.min(0, right));
    const xt = s.transpose(xc, [3, 1, 2, 0]); // [ci, h, w, b]
    const dyt = s.transpose(dy, [1, 2, 0, 3]); // [oh, ow, b, co]
    const pad = [[0, 0], [padInfo.top, Math.max(0, bottom)], [padInfo.left, Math.max(0, right)], [0, 0]];
    const dw = s.run('Conv2D', { x: xt, filter: dyt }, { strides: [1, 1], dilations: [sh, sw], pad, dataFormat: 'NHWC' }); // [ci, fh, fw, co]
    return s.transpose(dw, [1, 2, 0, 3]);
  });
}

export function depthwiseConv2dNativeBackpropFilter(args: KernelArgs): Info | Info[] {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs as { x: Info; dy: Info };
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') return cpuKernelOnWasm('DepthwiseConv2dNativeBackpropFilter', args);
  const filterShape = attrs.filterShape as Shape4;
  const info = tf.backend_util.computeConv2DInfo(x.shape as Shape4, filterShape, attrs.strides as number, attrs.dilations as number, attrs.pad as Pad, attrs.dimRoundingMode as Rounding, true);
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, filterHeight: fh, filterWidth: fw, outHeight: oh, outWidth: ow, inHeight: h, inWidth: w, padInfo } = info;
  const [b, , , c] = x.shape as Shape4;
  const m = filterShape[3];
  return scoped(backend as BackendWasm, (s) => {
    // Output position p reads rows p*dh + i*sh (i over dy): a depthwise conv with stride dh and dilation sh.
    const bottom = (fh - 1) * dh + (oh - 1) * sh + 1 - h - padInfo.top;
    const right = (fw - 1) * dw + (ow - 1) * sw + 1 - w - padInfo.left;
    const xc = padOrCrop(s, x, padInfo.top, bottom, padInfo.left, right);
    const [, hp, wp] = xc.shape as Shape4;
    const xs = s.reshape(s.transpose(xc, [1, 2, 0, 3]), [1, hp, wp, b * c]); // channel b*c + ci
    const f = s.reshape(s.transpose(s.reshape(dy, [b, oh, ow, c, m]), [1, 2, 0, 3, 4]), [oh, ow, b * c, m]);
    const out = s.run('DepthwiseConv2dNative', { x: xs, filter: f }, { strides: [dh, dw], dilations: [sh, sw], pad: 'valid' }); // [1, fh, fw, b*c*m]
    const summed = s.run('Sum', { x: s.reshape(out, [fh, fw, b, c * m]) }, { axis: [2], keepDims: false });
    return s.reshape(summed, filterShape);
  });
}

export function depthwiseConv2dNativeBackpropInput(args: KernelArgs): Info | Info[] {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  if (dy.dtype !== 'float32' || filter.dtype !== 'float32') return cpuKernelOnWasm('DepthwiseConv2dNativeBackpropInput', args);
  const inputShape = attrs.inputShape as Shape4;
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as Shape4, attrs.strides as number, attrs.dilations as number, attrs.pad as Pad, attrs.dimRoundingMode as Rounding, true);
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, filterHeight: fh, filterWidth: fw, inHeight: h, inWidth: w, padInfo } = info;
  const [b, , , c] = inputShape;
  const m = filter.shape[3]!;
  return scoped(backend as BackendWasm, (s) => {
    // dx[u] = sum_p dyz[u + pt - p*dh] w[p]: a correlation of dyz, padded by (fh-1)*dh - pt on top, with w reversed.
    const dyz = dilateSpatial(s, dy, sh, sw);
    const kh = (fh - 1) * dh;
    const kw = (fw - 1) * dw;
    const [, zh, zw] = dyz.shape as Shape4;
    const top = kh - padInfo.top;
    const left = kw - padInfo.left;
    const padded = padOrCrop(s, dyz, top, h + kh - top - zh, left, w + kw - left - zw);
    const flipped = s.reshape(s.run('Reverse', { x: filter }, { dims: [0, 1] }), [fh, fw, c * m, 1]);
    const out = s.run('DepthwiseConv2dNative', { x: padded, filter: flipped }, { strides: [1, 1], dilations: [dh, dw], pad: 'valid' }); // [b, h, w, c*m]
    if (m === 1) return out;
    return s.run('Sum', { x: s.reshape(out, [b, h, w, c, m]) }, { axis: [4], keepDims: false });
  });
}
