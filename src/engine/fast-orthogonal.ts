/**
 * A fast Orthogonal initializer. tfjs's (the default recurrent initializer of LSTM, GRU and
 * SimpleRNN) runs a QR of the gaussian matrix as hundreds of small tf ops: seconds to minutes
 * for an LSTM(512). This one does the same Householder QR on float64 typed arrays, from the same
 * gaussian draws (tf.randomNormal with the same shape and seed, so Math.random-seeded builds,
 * see seeded-random.ts, stay repeatable), with the same sign correction by diag(R) and gain:
 * the same matrix, up to float rounding, in milliseconds.
 *
 * How tfjs-layers reaches it: LSTM/GRU/SimpleRNN resolve their default 'orthogonal' through
 * getInitializer -> the serialization registry under the class name 'Orthogonal', so a class
 * registered under that name replaces tfjs's for them (and for specs and saved models naming
 * it). tf.initializers.orthogonal() (used by the model spec's initializer argument) constructs
 * tfjs's class directly, so that class's apply is replaced too.
 */
import * as tf from '@tensorflow/tfjs';

type Initializer = ReturnType<typeof tf.initializers.ones>;
type OrthogonalArgs = { gain?: number; seed?: number };

/**
 * Tall matrices with at least this many columns take the device path (tallQOnDevice) off the cpu
 * backend; smaller ones cost little either way and keep float64 throughout.
 */
const DEVICE_MIN_COLUMNS = 64;

/** Columns per cache block in signCorrectedQ (16 columns of 2048 doubles: 256 KB). */
const BLOCK = 16;

/**
 * Applies H = I - beta v v^T (v = vs[vOff + from..m-1]) to rows from..m-1 of the column-major
 * m-row matrix `a`, columns j0..j1-1. Four columns per pass: each v[i] is loaded once for four
 * independent dot products (a single running sum is bound by the add latency, ~4x slower).
 */
function reflect(vs: Float64Array, vOff: number, a: Float64Array, j0: number, j1: number, from: number, m: number, beta: number): void {
  let j = j0;
  for (; j + 3 < j1; j += 4) {
    const c0 = j * m;
    const c1 = c0 + m;
    const c2 = c1 + m;
    const c3 = c2 + m;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = from; i < m; i++) {
      const v = vs[vOff + i]!;
      s0 += v * a[c0 + i]!;
      s1 += v * a[c1 + i]!;
      s2 += v * a[c2 + i]!;
      s3 += v * a[c3 + i]!;
    }
    s0 *= beta;
    s1 *= beta;
    s2 *= beta;
    s3 *= beta;
    for (let i = from; i < m; i++) {
      const v = vs[vOff + i]!;
      a[c0 + i]! -= s0 * v;
      a[c1 + i]! -= s1 * v;
      a[c2 + i]! -= s2 * v;
      a[c3 + i]! -= s3 * v;
    }
  }
  for (; j < j1; j++) {
    const c = j * m;
    let s = 0;
    for (let i = from; i < m; i++) s += vs[vOff + i]! * a[c + i]!;
    s *= beta;
    for (let i = from; i < m; i++) a[c + i]! -= s * vs[vOff + i]!;
  }
}

/**
 * The orthogonal factor Q of the QR decomposition of the m x n (m >= n) row-major matrix `a`
 * whose R has a positive diagonal: a Householder QR's Q with columns multiplied by sign(R[j][j])
 * (Keras's "make Q uniform"). Returned column-major: Q[i][j] at j*m + i.
 */
export function signCorrectedQ(a: ArrayLike<number>, m: number, n: number, method: 'auto' | 'householder' = 'auto'): Float64Array {
  if (m < n) throw new Error(`signCorrectedQ needs rows >= columns, got ${m} x ${n}`);
  const at = columnMajor(a, m, n);
  if (method === 'householder') return householderQ(at, m, n);
  // Tall matrices (every LSTM/GRU recurrent kernel) go the Cholesky way: half the flops, in
  // register-blocked loops. A gaussian m x n matrix with m >= 2n has a condition number of
  // about (sqrt(m) + sqrt(n)) / (sqrt(m) - sqrt(n)) <= 6, so Q is orthogonal to ~1e-14.
  if (m >= 2 * n) {
    const q = choleskyQ(at, m, n);
    if (q) return q;
  }
  return householderQ(at, m, n);
}

/** A row-major m x n matrix as a column-major Float64Array (row j of the result: column j). */
function columnMajor(a: ArrayLike<number>, m: number, n: number): Float64Array {
  const at = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) at[j * m + i] = a[i * n + j]!;
  return at;
}

/**
 * CholeskyQR: G = A^T A = R^T R (R upper, positive diagonal), Q = A R^-1. The same Q as the
 * sign-corrected Householder QR (the QR with a positive diagonal R is unique). Null when a pivot
 * collapses (an ill-conditioned A), for the caller to take the Householder way.
 */
function choleskyQ(at: Float64Array, m: number, n: number): Float64Array | null {
  const g = new Float64Array(n * n);
  gram(at, m, n, g);
  const x = inverseCholeskyFactor(g, n);
  if (!x) return null;
  const q = new Float64Array(m * n);
  timesUpper(at, x, m, n, q);
  return q;
}

/**
 * X = R^-1 where G = R^T R (R upper, positive diagonal): G row-major n x n, its upper triangle
 * read and overwritten. Null when a pivot collapses (G not safely positive definite).
 */
export function inverseCholeskyFactor(g: Float64Array, n: number): Float64Array | null {
  // Left-looking upper Cholesky: row k of R = (row k of G - sum_{p<k} R[p][k] R[p][.]) / R[k][k],
  // the rows above taken four at a time (row k stays in L1; one load and store of it per four
  // rows, where a right-looking update streams the whole trailing matrix once per pivot).
  for (let k = 0; k < n; k++) {
    const rk = k * n;
    const before = g[rk + k]!;
    let p = 0;
    for (; p + 3 < k; p += 4) {
      const r0 = p * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
      const a0 = g[r0 + k]!, a1 = g[r1 + k]!, a2 = g[r2 + k]!, a3 = g[r3 + k]!;
      for (let l = k; l < n; l++) g[rk + l]! -= a0 * g[r0 + l]! + a1 * g[r1 + l]! + a2 * g[r2 + l]! + a3 * g[r3 + l]!;
    }
    for (; p < k; p++) {
      const rp = p * n;
      const a = g[rp + k]!;
      for (let l = k; l < n; l++) g[rk + l]! -= a * g[rp + l]!;
    }
    const pivot = g[rk + k]!;
    if (!(pivot > 0) || !(pivot > 1e-10 * before)) return null;
    const d = Math.sqrt(pivot);
    g[rk + k] = d;
    const inv = 1 / d;
    for (let l = k + 1; l < n; l++) g[rk + l]! *= inv;
  }
  // X = R^-1 (upper), row by row from the bottom: X[i][.] = (e_i - sum_{k>i} R[i][k] X[k][.]) / R[i][i],
  // again four rows of X at a time into row i.
  const x = new Float64Array(n * n);
  for (let i = n - 1; i >= 0; i--) {
    const ri = i * n;
    x[ri + i] = 1;
    let k = i + 1;
    for (; k + 3 < n; k += 4) {
      const x0 = k * n, x1 = x0 + n, x2 = x1 + n, x3 = x2 + n;
      const f0 = g[ri + k]!, f1 = g[ri + k + 1]!, f2 = g[ri + k + 2]!, f3 = g[ri + k + 3]!;
      // Rows k+1.. of X are zero left of their diagonal, so starting at k is exact.
      for (let j = k; j < n; j++) x[ri + j]! -= f0 * x[x0 + j]! + f1 * x[x1 + j]! + f2 * x[x2 + j]! + f3 * x[x3 + j]!;
    }
    for (; k < n; k++) {
      const f = g[ri + k]!;
      const rk = k * n;
      for (let j = k; j < n; j++) x[ri + j]! -= f * x[rk + j]!;
    }
    const inv = 1 / g[ri + i]!;
    for (let j = i; j < n; j++) x[ri + j]! *= inv;
  }
  return x;
}

/**
 * The tall case (m >= 2n) on a backend with fast matrix products (wasm's XNNPACK, libtensorflow):
 * CholeskyQR with the two m x n x n products (A^T A and A R^-1, nine tenths of the flops) as
 * float32 tf.matMul, and the n x n Cholesky and triangular inverse in float64 here. For a
 * gaussian A with m >= 2n (condition number <= 6), Q is orthogonal to ~1e-6, float32's own
 * level (tfjs's Gram-Schmidt works in float32 too). Null when the Cholesky fails.
 */
function tallQOnDevice(gauss: tf.Tensor2D, n: number): tf.Tensor2D | null {
  const g = tf.matMul(gauss, gauss, true, false);
  const gram64 = Float64Array.from(g.dataSync());
  g.dispose();
  const x = inverseCholeskyFactor(gram64, n);
  if (!x) return null;
  const xt = tf.tensor2d(Float32Array.from(x), [n, n]);
  try {
    return tf.matMul(gauss, xt);
  } finally {
    xt.dispose();
  }
}

/**
 * g[p][q] = <column p, column q> of A (at: column-major), for q >= p (row-major n x n). 4 x 4
 * tiles: 8 loads per 16 multiply-adds, where one dot at a time does 2 per 1.
 */
function gram(at: Float64Array, m: number, n: number, g: Float64Array): void {
  const n4 = n - (n % 4);
  for (let p = 0; p < n4; p += 4) {
    for (let q = p; q < n4; q += 4) {
      const a0 = p * m, a1 = a0 + m, a2 = a1 + m, a3 = a2 + m;
      const b0 = q * m, b1 = b0 + m, b2 = b1 + m, b3 = b2 + m;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
      for (let i = 0; i < m; i++) {
        const x0 = at[a0 + i]!, x1 = at[a1 + i]!, x2 = at[a2 + i]!, x3 = at[a3 + i]!;
        const y0 = at[b0 + i]!, y1 = at[b1 + i]!, y2 = at[b2 + i]!, y3 = at[b3 + i]!;
        s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
        s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
        s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2; s23 += x2 * y3;
        s30 += x3 * y0; s31 += x3 * y1; s32 += x3 * y2; s33 += x3 * y3;
      }
      const r0 = p * n + q, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
      g[r0] = s00; g[r0 + 1] = s01; g[r0 + 2] = s02; g[r0 + 3] = s03;
      g[r1] = s10; g[r1 + 1] = s11; g[r1 + 2] = s12; g[r1 + 3] = s13;
      g[r2] = s20; g[r2 + 1] = s21; g[r2 + 2] = s22; g[r2 + 3] = s23;
      g[r3] = s30; g[r3 + 1] = s31; g[r3 + 2] = s32; g[r3 + 3] = s33;
    }
  }
  // The last n % 4 columns, one dot at a time.
  for (let p = 0; p < n; p++) {
    for (let q = Math.max(p, n4); q < n; q++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += at[p * m + i]! * at[q * m + i]!;
      g[p * n + q] = s;
    }
  }
}

/** q (column-major m x n) = A X with X upper triangular (row-major n x n): Q[:, j] = sum_{k<=j} X[k][j] A[:, k]. */
function timesUpper(at: Float64Array, x: Float64Array, m: number, n: number, q: Float64Array): void {
  const n4 = n - (n % 4);
  const m4 = m - (m % 4);
  for (let j = 0; j < n4; j += 4) {
    const kEnd = j + 4;
    for (let i = 0; i < m4; i += 4) {
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
      for (let k = 0; k < kEnd; k++) {
        const xr = k * n + j;
        const x0 = x[xr]!, x1 = x[xr + 1]!, x2 = x[xr + 2]!, x3 = x[xr + 3]!;
        const ar = k * m + i;
        const a0 = at[ar]!, a1 = at[ar + 1]!, a2 = at[ar + 2]!, a3 = at[ar + 3]!;
        s00 += x0 * a0; s01 += x0 * a1; s02 += x0 * a2; s03 += x0 * a3;
        s10 += x1 * a0; s11 += x1 * a1; s12 += x1 * a2; s13 += x1 * a3;
        s20 += x2 * a0; s21 += x2 * a1; s22 += x2 * a2; s23 += x2 * a3;
        s30 += x3 * a0; s31 += x3 * a1; s32 += x3 * a2; s33 += x3 * a3;
      }
      const q0 = j * m + i, q1 = q0 + m, q2 = q1 + m, q3 = q2 + m;
      q[q0] = s00; q[q0 + 1] = s01; q[q0 + 2] = s02; q[q0 + 3] = s03;
      q[q1] = s10; q[q1 + 1] = s11; q[q1 + 2] = s12; q[q1 + 3] = s13;
      q[q2] = s20; q[q2 + 1] = s21; q[q2 + 2] = s22; q[q2 + 3] = s23;
      q[q3] = s30; q[q3 + 1] = s31; q[q3 + 2] = s32; q[q3 + 3] = s33;
    }
  }
  // Edges (n % 4 columns, m % 4 rows), one element at a time.
  for (let j = 0; j < n; j++) {
    for (let i = j < n4 ? m4 : 0; i < m; i++) {
      let s = 0;
      for (let k = 0; k <= j; k++) s += x[k * n + j]! * at[k * m + i]!;
      q[j * m + i] = s;
    }
  }
}

/** Householder QR, left-looking by column blocks; `r` (column-major A) is overwritten. */
function householderQ(r: Float64Array, m: number, n: number): Float64Array {
  const beta = new Float64Array(n);
  const rdiag = new Float64Array(n);
  // Left-looking, by blocks of columns: a block (a few hundred KB) stays in cache while the
  // reflectors stream past it once, where column-by-column sweeps would stream the whole matrix
  // (megabytes) once per reflector and be bound by memory bandwidth.
  for (let j0 = 0; j0 < n; j0 += BLOCK) {
    const j1 = Math.min(n, j0 + BLOCK);
    for (let k = 0; k < j0; k++) if (beta[k] !== 0) reflect(r, k * m, r, j0, j1, k, m, beta[k]!);
    for (let k = j0; k < j1; k++) {
      const col = k * m;
      let norm2 = 0;
      for (let i = k; i < m; i++) norm2 += r[col + i]! * r[col + i]!;
      const norm = Math.sqrt(norm2);
      const x0 = r[col + k]!;
      if (norm === 0) continue; // a zero column: H_k = I, R[k][k] = 0
      const alpha = x0 >= 0 ? -norm : norm;
      const v0 = x0 - alpha;
      r[col + k] = v0; // r[col + k..m-1] now holds v_k
      beta[k] = 2 / (norm2 - x0 * x0 + v0 * v0);
      rdiag[k] = alpha;
      reflect(r, col, r, k + 1, j1, k, m, beta[k]!);
    }
  }
  // Column j of Q = H_0 ... H_{n-1} I[:, :n] is H_0 ... H_j e_j (H_k leaves e_j alone for k > j):
  // columns are independent, so again by blocks, each with the reflectors applied last to first.
  const q = new Float64Array(m * n);
  for (let j0 = 0; j0 < n; j0 += BLOCK) {
    const j1 = Math.min(n, j0 + BLOCK);
    for (let j = j0; j < j1; j++) q[j * m + j] = 1;
    for (let k = j1 - 1; k >= 0; k--) if (beta[k] !== 0) reflect(r, k * m, q, Math.max(j0, k), j1, k, m, beta[k]!);
  }
  for (let j = 0; j < n; j++) {
    const sign = Math.sign(rdiag[j]!);
    for (let i = 0; i < m; i++) q[j * m + i]! *= sign;
  }
  return q;
}

/** What tfjs's Orthogonal.apply computes, fast. `this` carries tfjs's `gain` and `seed`. */
function fastApply(this: OrthogonalArgs, shape: number[], dtype?: tf.DataType): tf.Tensor {
  if (shape.length < 2) throw new Error('Orthogonal initializer: shape must be at least 2D.');
  if (dtype !== undefined && dtype !== 'float32' && dtype !== 'int32') throw new TypeError(`Unsupported data type ${dtype}.`);
  const rows = shape.slice(0, -1).reduce((x, y) => x * y, 1);
  const cols = shape[shape.length - 1]!;
  const m = Math.max(rows, cols);
  const n = Math.min(rows, cols);
  // The same draw as tfjs's: randomNormal([max, min], 0, 1, dtype, seed).
  const gauss = tf.randomNormal([m, n], 0, 1, dtype as 'float32' | 'int32' | undefined, this.seed);
  const gain = this.gain ?? 1;
  if (m >= 2 * n && n >= DEVICE_MIN_COLUMNS && gauss.dtype === 'float32' && tf.getBackend() !== 'cpu') {
    const q = tallQOnDevice(gauss as tf.Tensor2D, n);
    if (q) {
      gauss.dispose();
      const out = tf.tidy(() => (rows < cols ? q.transpose() : q).mul(gain).reshape(shape));
      q.dispose();
      return out;
    }
  }
  const values = gauss.dataSync();
  gauss.dispose();
  const q = signCorrectedQ(values, m, n);
  const out = new Float32Array(rows * cols);
  if (rows < cols) {
    // Wanted: Q^T (rows x cols), which is Q's column-major buffer read row-major.
    for (let i = 0; i < out.length; i++) out[i] = gain * q[i]!;
  } else {
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[i * n + j] = gain * q[j * m + i]!;
  }
  const result = tf.tensor(out, shape, 'float32');
  if (dtype !== 'int32') return result;
  const cast = result.cast('int32');
  result.dispose();
  return cast;
}

let installed = false;

/**
 * Makes every Orthogonal initializer tfjs-layers creates use the fast QR (idempotent): registers
 * a subclass of tfjs's class under 'Orthogonal' and replaces the apply of tfjs's class itself.
 */
export function installFastOrthogonal(): void {
  if (installed) return;
  installed = true;
  const TfjsOrthogonal = tf.initializers.orthogonal({}).constructor as new (args: OrthogonalArgs) => Initializer;
  (TfjsOrthogonal.prototype as unknown as { apply: typeof fastApply }).apply = fastApply;
  class FastOrthogonal extends TfjsOrthogonal {
    static className = 'Orthogonal';
    apply(shape: number[], dtype?: tf.DataType): tf.Tensor {
      return fastApply.call(this as unknown as OrthogonalArgs, shape, dtype);
    }
  }
  tf.serialization.registerClass(FastOrthogonal as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
}
