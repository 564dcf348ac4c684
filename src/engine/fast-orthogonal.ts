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
 * The orthogonal factor of a Householder QR of the m x n (m >= n) row-major matrix `a`, columns
 * multiplied by sign(R[j][j]) (Keras's "make Q uniform"), returned column-major: Q[i][j] at j*m + i.
 */
export function signCorrectedQ(a: ArrayLike<number>, m: number, n: number): Float64Array {
  if (m < n) throw new Error(`signCorrectedQ needs rows >= columns, got ${m} x ${n}`);
  // Column-major working copy: every inner loop below runs down one contiguous column.
  const r = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) r[j * m + i] = a[i * n + j]!;
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
  const values = gauss.dataSync();
  gauss.dispose();
  const q = signCorrectedQ(values, m, n);
  const gain = this.gain ?? 1;
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
  }
  tf.serialization.registerClass(FastOrthogonal as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
}
