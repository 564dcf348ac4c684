/**
 * A tiny WebAssembly module of our own, SIMD, that works directly on the wasm backend's memory:
 * it imports the backend's WebAssembly.Memory (exported by tfjs's module as `asm.memory`), so
 * it reads and writes tensors where they lie, with no copy and no engine dispatch.
 *
 * It holds one function, Adam's update over four floats at a time (see wasm-fused-adam.ts for
 * the arithmetic, which is tfjs's op for op, in float32). It is assembled here byte by byte (no
 * toolchain needed); WebAssembly.validate checks it before use, and without it (no SIMD, another
 * tfjs build) the fused kernel runs a JS loop instead.
 */

const SIMD = 0xfd;
const op = {
  block: 0x02, loop: 0x03, br: 0x0c, brIf: 0x0d, end: 0x0b, void: 0x40,
  localGet: 0x20, localSet: 0x21, i32Const: 0x41, i32Add: 0x6a, i32GeU: 0x4f,
};
// SIMD opcodes (prefix 0xfd, LEB128 sub-opcode).
const v128Load = [SIMD, 0x00, 0x00, 0x00]; // memarg: align 2^0, offset 0
const v128Store = [SIMD, 0x0b, 0x00, 0x00];
const f32x4Splat = [SIMD, 0x13];
const f32x4Sqrt = [SIMD, 0xe3, 0x01];
const f32x4Add = [SIMD, 0xe4, 0x01];
const f32x4Mul = [SIMD, 0xe6, 0x01];
const f32x4Div = [SIMD, 0xe7, 0x01];

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function section(id: number, body: number[]): number[] {
  return [id, ...leb(body.length), ...body];
}

function name(s: string): number[] {
  return [...leb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
}

// Parameters: byte offsets w, m, v, g, w2, m2, v2, end (i32), then b1, c1, b2, c2, d1, d2, eps, step (f32).
const [W, M, V, G, W2, M2, V2, END] = [0, 1, 2, 3, 4, 5, 6, 7];
const SCALARS = 8; // b1..step: params 8..15
// Locals: i (i32) 16; the splatted scalars 17..24; g 25, newM 26, newV 27 (v128).
const I = 16;
const SPLAT = 17;
const [B1, C1, B2, C2, D1, D2, EPS, STEP] = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => SPLAT + k);
const [GV, NM, NV] = [25, 26, 27];

const get = (i: number) => [op.localGet, i];
const set = (i: number) => [op.localSet, i];
const at = (base: number) => [...get(base), ...get(I), op.i32Add];

function adamBody(): number[] {
  const code: number[] = [];
  for (let k = 0; k < 8; k++) code.push(...get(SCALARS + k), ...f32x4Splat, ...set(SPLAT + k));
  code.push(op.block, op.void, op.loop, op.void);
  code.push(...get(I), ...get(END), op.i32GeU, op.brIf, 1);
  code.push(...at(G), ...v128Load, ...set(GV));
  // newM = m * b1 + g * c1
  code.push(...at(M), ...v128Load, ...get(B1), ...f32x4Mul, ...get(GV), ...get(C1), ...f32x4Mul, ...f32x4Add, ...set(NM));
  // newV = v * b2 + (g * g) * c2
  code.push(...at(V), ...v128Load, ...get(B2), ...f32x4Mul, ...get(GV), ...get(GV), ...f32x4Mul, ...get(C2), ...f32x4Mul, ...f32x4Add, ...set(NV));
  code.push(...at(M2), ...get(NM), ...v128Store);
  code.push(...at(V2), ...get(NV), ...v128Store);
  // w2 = ((newM / d1) / (sqrt(newV / d2) + eps)) * step + w
  code.push(...at(W2));
  code.push(...get(NM), ...get(D1), ...f32x4Div);
  code.push(...get(NV), ...get(D2), ...f32x4Div, ...f32x4Sqrt, ...get(EPS), ...f32x4Add);
  code.push(...f32x4Div, ...get(STEP), ...f32x4Mul, ...at(W), ...v128Load, ...f32x4Add, ...v128Store);
  code.push(...get(I), op.i32Const, 16, op.i32Add, ...set(I));
  code.push(op.br, 0, op.end, op.end, op.end);
  const locals = [2, 1, 0x7f, 11, 0x7b]; // 1 x i32, 11 x v128
  const body = [...locals, ...code];
  return [...leb(body.length), ...body];
}

/** The module's bytes, importing env.memory as shared or not (it must match the backend's). */
export function adamModuleBytes(shared: boolean): Uint8Array<ArrayBuffer> {
  const params = [...Array(8).fill(0x7f), ...Array(8).fill(0x7d)];
  const type = [1, 0x60, ...leb(params.length), ...params, 0];
  const limits = shared ? [0x03, ...leb(1), ...leb(65536)] : [0x00, ...leb(1)];
  const imports = [1, ...name('env'), ...name('memory'), 0x02, ...limits];
  const funcs = [1, 0];
  const exports = [1, ...name('adam'), 0x00, 0];
  const code = [1, ...adamBody()];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, type), ...section(2, imports), ...section(3, funcs), ...section(7, exports), ...section(10, code),
  ]);
}

export type AdamSimd = (w: number, m: number, v: number, g: number, w2: number, m2: number, v2: number, end: number,
  b1: number, c1: number, b2: number, c2: number, d1: number, d2: number, eps: number, step: number) => void;

const instances = new WeakMap<WebAssembly.Memory, AdamSimd | null>();

/** The SIMD Adam function bound to this memory (null when the module cannot be made here). */
export function adamSimdFor(memory: WebAssembly.Memory | undefined): AdamSimd | null {
  if (!memory) return null;
  if (instances.has(memory)) return instances.get(memory)!;
  let fn: AdamSimd | null = null;
  try {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const bytes = adamModuleBytes(shared);
    if (WebAssembly.validate(bytes)) {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
      fn = instance.exports.adam as AdamSimd;
    }
  } catch {
    fn = null;
  }
  instances.set(memory, fn);
  return fn;
}
