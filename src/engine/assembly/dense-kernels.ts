// AssemblyScript (compiled to dense-kernels.wasm by `npm run build:wasm`; not part of the
// TypeScript build). The arithmetic of src/engine/dense-trainer.ts: float32 matrices, row-major,
// passed as byte offsets into this module's own memory. SIMD (f32x4) where it pays.

/** Where the caller may start laying out its buffers. */
export function heapBase(): usize {
  return __heap_base;
}

// ------------------------------------------------------------------------------------------
// Matrix products. Register tiles of 4 rows x 8 columns (8 f32x4 accumulators), then 4-column
// and single-row/column tails.

// C[M,N] = A[M,K] @ B[K,N], or C += A @ B when acc != 0.
export function gemmNN(a: usize, b: usize, c: usize, M: i32, K: i32, N: i32, acc: i32): void {
  let i = 0;
  for (; i + 4 <= M; i += 4) {
    const a0 = a + (<usize>(i * K) << 2);
    const a1 = a0 + (<usize>K << 2);
    const a2 = a1 + (<usize>K << 2);
    const a3 = a2 + (<usize>K << 2);
    let j = 0;
    for (; j + 8 <= N; j += 8) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let bp = b + (<usize>j << 2);
      const bs = <usize>N << 2;
      for (let k = 0; k < K; k++) {
        const b0 = v128.load(bp);
        const b1 = v128.load(bp, 16);
        const ko = <usize>k << 2;
        let s = f32x4.splat(load<f32>(a0 + ko));
        c00 = f32x4.add(c00, f32x4.mul(s, b0));
        c01 = f32x4.add(c01, f32x4.mul(s, b1));
        s = f32x4.splat(load<f32>(a1 + ko));
        c10 = f32x4.add(c10, f32x4.mul(s, b0));
        c11 = f32x4.add(c11, f32x4.mul(s, b1));
        s = f32x4.splat(load<f32>(a2 + ko));
        c20 = f32x4.add(c20, f32x4.mul(s, b0));
        c21 = f32x4.add(c21, f32x4.mul(s, b1));
        s = f32x4.splat(load<f32>(a3 + ko));
        c30 = f32x4.add(c30, f32x4.mul(s, b0));
        c31 = f32x4.add(c31, f32x4.mul(s, b1));
        bp += bs;
      }
      const cp = c + (<usize>(i * N + j) << 2);
      const cs = <usize>N << 2;
      store8(cp, c00, c01, acc);
      store8(cp + cs, c10, c11, acc);
      store8(cp + 2 * cs, c20, c21, acc);
      store8(cp + 3 * cs, c30, c31, acc);
    }
    for (; j + 4 <= N; j += 4) {
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let bp = b + (<usize>j << 2);
      const bs = <usize>N << 2;
      for (let k = 0; k < K; k++) {
        const b0 = v128.load(bp);
        const ko = <usize>k << 2;
        c0 = f32x4.add(c0, f32x4.mul(f32x4.splat(load<f32>(a0 + ko)), b0));
        c1 = f32x4.add(c1, f32x4.mul(f32x4.splat(load<f32>(a1 + ko)), b0));
        c2 = f32x4.add(c2, f32x4.mul(f32x4.splat(load<f32>(a2 + ko)), b0));
        c3 = f32x4.add(c3, f32x4.mul(f32x4.splat(load<f32>(a3 + ko)), b0));
        bp += bs;
      }
      const cp = c + (<usize>(i * N + j) << 2);
      const cs = <usize>N << 2;
      store4(cp, c0, acc);
      store4(cp + cs, c1, acc);
      store4(cp + 2 * cs, c2, acc);
      store4(cp + 3 * cs, c3, acc);
    }
    for (; j < N; j++) {
      for (let r = 0; r < 4; r++) rowDot(a + (<usize>((i + r) * K) << 2), b + (<usize>j << 2), <usize>N << 2, K, c + (<usize>((i + r) * N + j) << 2), acc);
    }
  }
  for (; i < M; i++) {
    const ap = a + (<usize>(i * K) << 2);
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      let c0 = f32x4.splat(0);
      let bp = b + (<usize>j << 2);
      for (let k = 0; k < K; k++) {
        c0 = f32x4.add(c0, f32x4.mul(f32x4.splat(load<f32>(ap + (<usize>k << 2))), v128.load(bp)));
        bp += <usize>N << 2;
      }
      store4(c + (<usize>(i * N + j) << 2), c0, acc);
    }
    for (; j < N; j++) rowDot(ap, b + (<usize>j << 2), <usize>N << 2, K, c + (<usize>(i * N + j) << 2), acc);
  }
}

// C[K,N] = A[M,K]^T @ B[M,N] (the weight gradient x^T @ dy), or C += when acc != 0.
export function gemmTN(a: usize, b: usize, c: usize, M: i32, K: i32, N: i32, acc: i32): void {
  const as = <usize>K << 2;
  const bs = <usize>N << 2;
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    let j = 0;
    for (; j + 8 <= N; j += 8) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let ap = a + (<usize>k << 2);
      let bp = b + (<usize>j << 2);
      for (let m = 0; m < M; m++) {
        const av = v128.load(ap);
        const b0 = v128.load(bp);
        const b1 = v128.load(bp, 16);
        let s = v128.shuffle<f32>(av, av, 0, 0, 0, 0);
        c00 = f32x4.add(c00, f32x4.mul(s, b0));
        c01 = f32x4.add(c01, f32x4.mul(s, b1));
        s = v128.shuffle<f32>(av, av, 1, 1, 1, 1);
        c10 = f32x4.add(c10, f32x4.mul(s, b0));
        c11 = f32x4.add(c11, f32x4.mul(s, b1));
        s = v128.shuffle<f32>(av, av, 2, 2, 2, 2);
        c20 = f32x4.add(c20, f32x4.mul(s, b0));
        c21 = f32x4.add(c21, f32x4.mul(s, b1));
        s = v128.shuffle<f32>(av, av, 3, 3, 3, 3);
        c30 = f32x4.add(c30, f32x4.mul(s, b0));
        c31 = f32x4.add(c31, f32x4.mul(s, b1));
        ap += as;
        bp += bs;
      }
      const cp = c + (<usize>(k * N + j) << 2);
      store8(cp, c00, c01, acc);
      store8(cp + bs, c10, c11, acc);
      store8(cp + 2 * bs, c20, c21, acc);
      store8(cp + 3 * bs, c30, c31, acc);
    }
    for (; j + 4 <= N; j += 4) {
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let ap = a + (<usize>k << 2);
      let bp = b + (<usize>j << 2);
      for (let m = 0; m < M; m++) {
        const av = v128.load(ap);
        const b0 = v128.load(bp);
        c0 = f32x4.add(c0, f32x4.mul(v128.shuffle<f32>(av, av, 0, 0, 0, 0), b0));
        c1 = f32x4.add(c1, f32x4.mul(v128.shuffle<f32>(av, av, 1, 1, 1, 1), b0));
        c2 = f32x4.add(c2, f32x4.mul(v128.shuffle<f32>(av, av, 2, 2, 2, 2), b0));
        c3 = f32x4.add(c3, f32x4.mul(v128.shuffle<f32>(av, av, 3, 3, 3, 3), b0));
        ap += as;
        bp += bs;
      }
      const cp = c + (<usize>(k * N + j) << 2);
      store4(cp, c0, acc);
      store4(cp + bs, c1, acc);
      store4(cp + 2 * bs, c2, acc);
      store4(cp + 3 * bs, c3, acc);
    }
    for (; j < N; j++) {
      for (let r = 0; r < 4; r++) colDot(a + (<usize>(k + r) << 2), as, b + (<usize>j << 2), bs, M, c + (<usize>((k + r) * N + j) << 2), acc);
    }
  }
  for (; k < K; k++) {
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      let c0 = f32x4.splat(0);
      let ap = a + (<usize>k << 2);
      let bp = b + (<usize>j << 2);
      for (let m = 0; m < M; m++) {
        c0 = f32x4.add(c0, f32x4.mul(f32x4.splat(load<f32>(ap)), v128.load(bp)));
        ap += as;
        bp += bs;
      }
      store4(c + (<usize>(k * N + j) << 2), c0, acc);
    }
    for (; j < N; j++) colDot(a + (<usize>k << 2), as, b + (<usize>j << 2), bs, M, c + (<usize>(k * N + j) << 2), acc);
  }
}

// C[M,K] = A[M,N] @ B[K,N]^T (the input gradient dy @ W^T): dot products of rows, in tiles of
// 2 rows of A x 4 rows of B (8 f32x4 partial sums), then single rows.
export function gemmNT(a: usize, b: usize, c: usize, M: i32, N: i32, K: i32): void {
  const n4 = N & ~3;
  const rs = <usize>N << 2;
  let i = 0;
  for (; i + 2 <= M; i += 2) {
    const a0 = a + <usize>i * rs;
    const a1 = a0 + rs;
    let k = 0;
    for (; k + 4 <= K; k += 4) {
      const b0 = b + <usize>k * rs;
      const b1 = b0 + rs;
      const b2 = b1 + rs;
      const b3 = b2 + rs;
      let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s02 = f32x4.splat(0), s03 = f32x4.splat(0);
      let s10 = f32x4.splat(0), s11 = f32x4.splat(0), s12 = f32x4.splat(0), s13 = f32x4.splat(0);
      for (let j = 0; j < n4; j += 4) {
        const o = <usize>j << 2;
        const x0 = v128.load(a0 + o);
        const x1 = v128.load(a1 + o);
        let w = v128.load(b0 + o);
        s00 = f32x4.add(s00, f32x4.mul(x0, w));
        s10 = f32x4.add(s10, f32x4.mul(x1, w));
        w = v128.load(b1 + o);
        s01 = f32x4.add(s01, f32x4.mul(x0, w));
        s11 = f32x4.add(s11, f32x4.mul(x1, w));
        w = v128.load(b2 + o);
        s02 = f32x4.add(s02, f32x4.mul(x0, w));
        s12 = f32x4.add(s12, f32x4.mul(x1, w));
        w = v128.load(b3 + o);
        s03 = f32x4.add(s03, f32x4.mul(x0, w));
        s13 = f32x4.add(s13, f32x4.mul(x1, w));
      }
      const c0 = c + (<usize>(i * K + k) << 2);
      const c1 = c0 + (<usize>K << 2);
      store<f32>(c0, hsum(s00) + tailDot(a0, b0, n4, N));
      store<f32>(c0 + 4, hsum(s01) + tailDot(a0, b1, n4, N));
      store<f32>(c0 + 8, hsum(s02) + tailDot(a0, b2, n4, N));
      store<f32>(c0 + 12, hsum(s03) + tailDot(a0, b3, n4, N));
      store<f32>(c1, hsum(s10) + tailDot(a1, b0, n4, N));
      store<f32>(c1 + 4, hsum(s11) + tailDot(a1, b1, n4, N));
      store<f32>(c1 + 8, hsum(s12) + tailDot(a1, b2, n4, N));
      store<f32>(c1 + 12, hsum(s13) + tailDot(a1, b3, n4, N));
    }
    for (; k < K; k++) {
      const bk = b + <usize>k * rs;
      store<f32>(c + (<usize>(i * K + k) << 2), rowDotNT(a0, bk, n4, N));
      store<f32>(c + (<usize>((i + 1) * K + k) << 2), rowDotNT(a1, bk, n4, N));
    }
  }
  for (; i < M; i++) {
    const ai = a + <usize>i * rs;
    for (let k = 0; k < K; k++) store<f32>(c + (<usize>(i * K + k) << 2), rowDotNT(ai, b + <usize>k * rs, n4, N));
  }
}

@inline function hsum(s: v128): f32 {
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3);
}

// sum over j in [from, N) of a[j] * b[j]
@inline function tailDot(a: usize, b: usize, from: i32, N: i32): f32 {
  let t: f32 = 0;
  for (let j = from; j < N; j++) t += load<f32>(a + (<usize>j << 2)) * load<f32>(b + (<usize>j << 2));
  return t;
}

// sum over j in [0, N) of a[j] * b[j], four at a time up to n4
function rowDotNT(a: usize, b: usize, n4: i32, N: i32): f32 {
  let s = f32x4.splat(0);
  for (let j = 0; j < n4; j += 4) s = f32x4.add(s, f32x4.mul(v128.load(a + (<usize>j << 2)), v128.load(b + (<usize>j << 2))));
  return hsum(s) + tailDot(a, b, n4, N);
}

@inline function store8(p: usize, v0: v128, v1: v128, acc: i32): void {
  if (acc) {
    v0 = f32x4.add(v0, v128.load(p));
    v1 = f32x4.add(v1, v128.load(p, 16));
  }
  v128.store(p, v0);
  v128.store(p, v1, 16);
}

@inline function store4(p: usize, v: v128, acc: i32): void {
  if (acc) v = f32x4.add(v, v128.load(p));
  v128.store(p, v);
}

// c = (acc ? c : 0) + sum_k a[k] * b[k * bs]
function rowDot(a: usize, b: usize, bs: usize, K: i32, c: usize, acc: i32): void {
  let s: f32 = 0;
  for (let k = 0; k < K; k++) {
    s += load<f32>(a + (<usize>k << 2)) * load<f32>(b);
    b += bs;
  }
  store<f32>(c, acc ? load<f32>(c) + s : s);
}

// c = (acc ? c : 0) + sum_m a[m * as] * b[m * bs]
function colDot(a: usize, as: usize, b: usize, bs: usize, M: i32, c: usize, acc: i32): void {
  let s: f32 = 0;
  for (let m = 0; m < M; m++) {
    s += load<f32>(a) * load<f32>(b);
    a += as;
    b += bs;
  }
  store<f32>(c, acc ? load<f32>(c) + s : s);
}

// ------------------------------------------------------------------------------------------
// Layers: bias and activation forward, activation backward, bias gradient.

const LINEAR = 0;
const RELU = 1;
const SIGMOID = 2;
const TANH = 3;

// z[M,N] += bias (when bias != 0), then the activation in place.
export function biasActivation(z: usize, bias: usize, M: i32, N: i32, act: i32): void {
  const n = M * N;
  if (bias) {
    for (let i = 0; i < M; i++) {
      const row = z + (<usize>(i * N) << 2);
      let j = 0;
      for (; j + 4 <= N; j += 4) v128.store(row + (<usize>j << 2), f32x4.add(v128.load(row + (<usize>j << 2)), v128.load(bias + (<usize>j << 2))));
      for (; j < N; j++) store<f32>(row + (<usize>j << 2), load<f32>(row + (<usize>j << 2)) + load<f32>(bias + (<usize>j << 2)));
    }
  }
  if (act == RELU) {
    let i = 0;
    const zero = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) v128.store(z + (<usize>i << 2), f32x4.max(v128.load(z + (<usize>i << 2)), zero));
    for (; i < n; i++) store<f32>(z + (<usize>i << 2), max<f32>(load<f32>(z + (<usize>i << 2)), 0));
  } else if (act == SIGMOID) {
    for (let i = 0; i < n; i++) {
      const p = z + (<usize>i << 2);
      store<f32>(p, <f32>1 / (<f32>1 + Mathf.exp(-load<f32>(p))));
    }
  } else if (act == TANH) {
    for (let i = 0; i < n; i++) {
      const p = z + (<usize>i << 2);
      store<f32>(p, Mathf.tanh(load<f32>(p)));
    }
  }
}

// d[n] *= act'(a[n]), with a the activation's output (the gradient through the activation).
export function activationGrad(d: usize, a: usize, n: i32, act: i32): void {
  if (act == RELU) {
    let i = 0;
    const zero = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(d + o, v128.and(v128.load(d + o), f32x4.gt(v128.load(a + o), zero)));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      if (!(load<f32>(a + o) > 0)) store<f32>(d + o, 0);
    }
  } else if (act == SIGMOID) {
    for (let i = 0; i < n; i++) {
      const o = <usize>i << 2;
      const y = load<f32>(a + o);
      store<f32>(d + o, load<f32>(d + o) * (y * (<f32>1 - y)));
    }
  } else if (act == TANH) {
    for (let i = 0; i < n; i++) {
      const o = <usize>i << 2;
      const y = load<f32>(a + o);
      store<f32>(d + o, load<f32>(d + o) * (<f32>1 - y * y));
    }
  }
}

// out[N] = sum over the M rows of d[M,N] (a bias's gradient).
export function columnSums(d: usize, out: usize, M: i32, N: i32): void {
  let j = 0;
  for (; j + 4 <= N; j += 4) {
    let s = f32x4.splat(0);
    for (let i = 0; i < M; i++) s = f32x4.add(s, v128.load(d + (<usize>(i * N + j) << 2)));
    v128.store(out + (<usize>j << 2), s);
  }
  for (; j < N; j++) {
    let s: f32 = 0;
    for (let i = 0; i < M; i++) s += load<f32>(d + (<usize>(i * N + j) << 2));
    store<f32>(out + (<usize>j << 2), s);
  }
}

// ------------------------------------------------------------------------------------------
// Losses. Each writes the gradient of the batch's loss, sum(w_i loss_i) / M with w the sample
// weights (wts, M floats; 0 = all 1), w.r.t. the last layer's pre-activation (softmax/sigmoid
// with cross-entropy) or output (mse) into dz, and adds to stats (three float64): the weighted
// per-sample losses, the unweighted ones, and the kernel's metric (correct predictions, or
// absolute errors for mse), unweighted as Keras's plain metrics are.

const EPS: f32 = 1e-7;

@inline function weightOf(wts: usize, i: i32): f32 {
  return wts ? load<f32>(wts + (<usize>i << 2)) : 1;
}

@inline function addStats(stats: usize, weighted: f64, plain: f64, metric: f64): void {
  store<f64>(stats, load<f64>(stats) + weighted);
  store<f64>(stats, load<f64>(stats, 8) + plain, 8);
  store<f64>(stats, load<f64>(stats, 16) + metric, 16);
}

// Softmax over each row of the logits z[M,N] + categorical cross-entropy against y: class ids
// (sparse != 0, y[M]) or probabilities (y[M,N]). probs[M,N] receives the softmax. The loss is
// Keras's -sum(y * log(clip(p / sum(p), eps, 1 - eps))); the gradient is the logits' p * sum(y) - y.
export function softmaxCrossEntropy(z: usize, y: usize, probs: usize, dz: usize, M: i32, N: i32, sparse: i32, wts: usize, stats: usize): void {
  const inv: f32 = <f32>1 / <f32>M;
  let weighted: f64 = 0;
  let plain: f64 = 0;
  let correct: f64 = 0;
  for (let i = 0; i < M; i++) {
    const zr = z + (<usize>(i * N) << 2);
    const pr = probs + (<usize>(i * N) << 2);
    const dr = dz + (<usize>(i * N) << 2);
    const scale = weightOf(wts, i) * inv;
    let mx = load<f32>(zr);
    for (let j = 1; j < N; j++) mx = max<f32>(mx, load<f32>(zr + (<usize>j << 2)));
    let sum: f32 = 0;
    for (let j = 0; j < N; j++) {
      const e = Mathf.exp(load<f32>(zr + (<usize>j << 2)) - mx);
      store<f32>(pr + (<usize>j << 2), e);
      sum += e;
    }
    // The probabilities, their sum and their argmax (first maximum, as tf.argMax).
    let psum: f32 = 0;
    let arg = 0;
    let pmx: f32 = -1;
    for (let j = 0; j < N; j++) {
      const p = load<f32>(pr + (<usize>j << 2)) / sum;
      store<f32>(pr + (<usize>j << 2), p);
      psum += p;
      if (p > pmx) {
        pmx = p;
        arg = j;
      }
    }
    let loss: f32 = 0;
    if (sparse) {
      // A class id outside [0, N) is an all-zero one-hot row, as tf.oneHot makes it: no loss, no gradient.
      const t = <i32>load<f32>(y + (<usize>i << 2));
      const valid = t >= 0 && t < N;
      for (let j = 0; j < N; j++) {
        const p = load<f32>(pr + (<usize>j << 2));
        store<f32>(dr + (<usize>j << 2), valid ? (j == t ? p - 1 : p) * scale : 0);
      }
      if (valid) loss = -Mathf.log(min<f32>(max<f32>(load<f32>(pr + (<usize>t << 2)) / psum, EPS), <f32>1 - EPS));
      if (arg == t) correct += 1;
    } else {
      const yr = y + (<usize>(i * N) << 2);
      let ysum: f32 = 0;
      let yarg = 0;
      let ymx = load<f32>(yr);
      for (let j = 0; j < N; j++) {
        const t = load<f32>(yr + (<usize>j << 2));
        ysum += t;
        if (j > 0 && t > ymx) {
          ymx = t;
          yarg = j;
        }
      }
      for (let j = 0; j < N; j++) {
        const p = load<f32>(pr + (<usize>j << 2));
        const t = load<f32>(yr + (<usize>j << 2));
        store<f32>(dr + (<usize>j << 2), (p * ysum - t) * scale);
        if (t != 0) loss -= t * Mathf.log(min<f32>(max<f32>(p / psum, EPS), <f32>1 - EPS));
      }
      if (arg == yarg) correct += 1;
    }
    weighted += <f64>(loss * weightOf(wts, i));
    plain += <f64>loss;
  }
  addStats(stats, weighted, plain, correct);
}

// Sigmoid of the logits z[M,N] + binary cross-entropy against y[M,N] (Keras: the mean over the
// N outputs of -(y log p + (1 - y) log(1 - p)), p clipped to [eps, 1 - eps]); the metric counts
// outputs with (p > 0.5) == y, over N (the binary accuracy). probs receives p.
export function sigmoidCrossEntropy(z: usize, y: usize, probs: usize, dz: usize, M: i32, N: i32, wts: usize, stats: usize): void {
  const inv: f32 = <f32>1 / <f32>(M * N);
  let weighted: f64 = 0;
  let plain: f64 = 0;
  let correct: f64 = 0;
  for (let i = 0; i < M; i++) {
    const w = weightOf(wts, i);
    let rowLoss: f64 = 0;
    for (let j = 0; j < N; j++) {
      const o = <usize>(i * N + j) << 2;
      const p = <f32>1 / (<f32>1 + Mathf.exp(-load<f32>(z + o)));
      const t = load<f32>(y + o);
      store<f32>(probs + o, p);
      store<f32>(dz + o, (p - t) * inv * w);
      const pc = min<f32>(max<f32>(p, EPS), <f32>1 - EPS);
      rowLoss += <f64>(-(t * Mathf.log(pc) + (<f32>1 - t) * Mathf.log(<f32>1 - pc)));
      if (<f32>(p > 0.5 ? 1 : 0) == t) correct += 1;
    }
    weighted += (rowLoss / <f64>N) * <f64>w;
    plain += rowLoss / <f64>N;
  }
  addStats(stats, weighted, plain, correct / <f64>N);
}

// Mean squared error of the outputs a[M,N] against y[M,N]: d = 2 w_i (a - y) / (M N), the
// gradient w.r.t. a; the metric is the per-sample mean absolute error.
export function meanSquaredError(a: usize, y: usize, d: usize, M: i32, N: i32, wts: usize, stats: usize): void {
  const scale: f32 = <f32>2 / <f32>(M * N);
  let weighted: f64 = 0;
  let plain: f64 = 0;
  let ab: f64 = 0;
  for (let i = 0; i < M; i++) {
    const w = weightOf(wts, i);
    let sq: f64 = 0;
    for (let j = 0; j < N; j++) {
      const o = <usize>(i * N + j) << 2;
      const e = load<f32>(a + o) - load<f32>(y + o);
      store<f32>(d + o, e * scale * w);
      sq += <f64>(e * e);
      ab += <f64>Mathf.abs(e);
    }
    weighted += (sq / <f64>N) * <f64>w;
    plain += sq / <f64>N;
  }
  addStats(stats, weighted, plain, ab / <f64>N);
}

// ------------------------------------------------------------------------------------------
// Optimizers, op for op as tfjs computes them in float32.

// Adam: m = m b1 + g c1; v = v b2 + g^2 c2; w += (m / d1) / (sqrt(v / d2) + eps) * step,
// with c = 1 - b, d = 1 - accBeta, step = -learning rate.
export function adam(w: usize, m: usize, v: usize, g: usize, n: i32, b1: f32, c1: f32, b2: f32, c2: f32, d1: f32, d2: f32, eps: f32, step: f32): void {
  let i = 0;
  const B1 = f32x4.splat(b1), C1 = f32x4.splat(c1), B2 = f32x4.splat(b2), C2 = f32x4.splat(c2);
  const D1 = f32x4.splat(d1), D2 = f32x4.splat(d2), E = f32x4.splat(eps), S = f32x4.splat(step);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const gv = v128.load(g + o);
    const nm = f32x4.add(f32x4.mul(v128.load(m + o), B1), f32x4.mul(gv, C1));
    const nv = f32x4.add(f32x4.mul(v128.load(v + o), B2), f32x4.mul(f32x4.mul(gv, gv), C2));
    const bm = f32x4.div(nm, D1);
    const bv = f32x4.div(nv, D2);
    v128.store(w + o, f32x4.add(f32x4.mul(f32x4.div(bm, f32x4.add(f32x4.sqrt(bv), E)), S), v128.load(w + o)));
    v128.store(m + o, nm);
    v128.store(v + o, nv);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    const nm = load<f32>(m + o) * b1 + gi * c1;
    const nv = load<f32>(v + o) * b2 + gi * gi * c2;
    const bm = nm / d1;
    const bv = nv / d2;
    store<f32>(w + o, (bm / (Mathf.sqrt(bv) + eps)) * step + load<f32>(w + o));
    store<f32>(m + o, nm);
    store<f32>(v + o, nv);
  }
}

// SGD: w = step * g + w, step = -learning rate.
export function sgd(w: usize, g: usize, n: i32, step: f32): void {
  let i = 0;
  const S = f32x4.splat(step);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(w + o, f32x4.add(f32x4.mul(S, v128.load(g + o)), v128.load(w + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(w + o, step * load<f32>(g + o) + load<f32>(w + o));
  }
}

// Momentum (tfjs's MomentumOptimizer): acc = m acc + g; w = step (nesterov ? g + acc m : acc) + w.
export function momentum(w: usize, acc: usize, g: usize, n: i32, m: f32, step: f32, nesterov: i32): void {
  let i = 0;
  const Mv = f32x4.splat(m), S = f32x4.splat(step);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const gv = v128.load(g + o);
    const na = f32x4.add(f32x4.mul(Mv, v128.load(acc + o)), gv);
    const d = nesterov ? f32x4.add(gv, f32x4.mul(na, Mv)) : na;
    v128.store(w + o, f32x4.add(f32x4.mul(S, d), v128.load(w + o)));
    v128.store(acc + o, na);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    const na = m * load<f32>(acc + o) + gi;
    const d = nesterov ? gi + na * m : na;
    store<f32>(w + o, step * d + load<f32>(w + o));
    store<f32>(acc + o, na);
  }
}

// RMSprop, not centered (tfjs's RMSPropOptimizer): ms = ms decay + g^2 c (c = 1 - decay);
// mom = mom momentum + (g lr) / sqrt(ms + eps); w = w - mom.
export function rmsprop(w: usize, ms: usize, mom: usize, g: usize, n: i32, decay: f32, c: f32, momentum: f32, lr: f32, eps: f32): void {
  let i = 0;
  const D = f32x4.splat(decay), C = f32x4.splat(c), Mo = f32x4.splat(momentum), L = f32x4.splat(lr), E = f32x4.splat(eps);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const gv = v128.load(g + o);
    const nms = f32x4.add(f32x4.mul(v128.load(ms + o), D), f32x4.mul(f32x4.mul(gv, gv), C));
    const nmom = f32x4.add(f32x4.mul(v128.load(mom + o), Mo), f32x4.div(f32x4.mul(gv, L), f32x4.sqrt(f32x4.add(nms, E))));
    v128.store(w + o, f32x4.sub(v128.load(w + o), nmom));
    v128.store(ms + o, nms);
    v128.store(mom + o, nmom);
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    const nms = load<f32>(ms + o) * decay + gi * gi * c;
    const nmom = load<f32>(mom + o) * momentum + (gi * lr) / Mathf.sqrt(nms + eps);
    store<f32>(w + o, load<f32>(w + o) - nmom);
    store<f32>(ms + o, nms);
    store<f32>(mom + o, nmom);
  }
}

// ------------------------------------------------------------------------------------------
// Dropout (training only): tfjs's inverted dropout, each value kept when a uniform draw u in
// [0, 1) is >= rate and then scaled by 1 / (1 - rate), else zeroed. x is changed in place and
// mask[n] receives each value's factor (0 or the scale), for the backward pass. The draws come
// from xorshift32 seeded with `seed` (a function of the fit's seed, the step and the layer).
export function dropout(x: usize, mask: usize, n: i32, rate: f32, seed: u32): void {
  let s: u32 = seed ? seed : 0x9e3779b9;
  const scale: f32 = <f32>1 / (<f32>1 - rate);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    const u = <f32>(s >>> 8) * (<f32>1 / <f32>16777216);
    const m: f32 = u >= rate ? scale : 0;
    const o = <usize>i << 2;
    store<f32>(mask + o, m);
    store<f32>(x + o, load<f32>(x + o) * m);
  }
}

// d[n] *= mask[n]
export function multiply(d: usize, mask: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(d + o, f32x4.mul(v128.load(d + o), v128.load(mask + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(d + o, load<f32>(d + o) * load<f32>(mask + o));
  }
}
