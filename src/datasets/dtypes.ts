/**
 * Storage dtypes of dataset columns. Files are raw little-endian arrays of one dtype
 * (bool as one byte 0/1); every column is fed to the model as float32.
 */
export type Dtype = 'float32' | 'int32' | 'uint8' | 'bool';

export const DTYPES: readonly Dtype[] = ['float32', 'int32', 'uint8', 'bool'];

export type StoredArray = Float32Array | Int32Array | Uint8Array;

export function bytesPerValue(dtype: Dtype): number {
  return dtype === 'float32' || dtype === 'int32' ? 4 : 1;
}

/** File extension of a column file of this dtype. */
export function fileExtension(dtype: Dtype): string {
  return { float32: 'f32', int32: 'i32', uint8: 'u8', bool: 'b8' }[dtype];
}

/** A new array of `length` values of the dtype's storage type. */
export function allocate(dtype: Dtype, length: number): StoredArray {
  if (dtype === 'float32') return new Float32Array(length);
  if (dtype === 'int32') return new Int32Array(length);
  return new Uint8Array(length);
}

/** A typed view of `bytes` (which must be aligned for 4-byte dtypes). */
export function view(dtype: Dtype, bytes: Uint8Array): StoredArray {
  const n = bytes.byteLength / bytesPerValue(dtype);
  if (dtype === 'float32') return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  if (dtype === 'int32') return new Int32Array(bytes.buffer, bytes.byteOffset, n);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, n);
}

/** Converts stored bytes of a dtype into float32 values at `out[offset..]`. `bytes` may be unaligned. */
export function toFloat32(dtype: Dtype, bytes: Uint8Array, out: Float32Array, offset: number): void {
  const n = bytes.byteLength / bytesPerValue(dtype);
  if (dtype === 'uint8' || dtype === 'bool') {
    out.set(bytes, offset);
    return;
  }
  if (bytes.byteOffset % 4 === 0) {
    const src = dtype === 'float32' ? new Float32Array(bytes.buffer, bytes.byteOffset, n) : new Int32Array(bytes.buffer, bytes.byteOffset, n);
    out.set(src, offset);
    return;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'float32') for (let i = 0; i < n; i++) out[offset + i] = dv.getFloat32(i * 4, true);
  else for (let i = 0; i < n; i++) out[offset + i] = dv.getInt32(i * 4, true);
}
