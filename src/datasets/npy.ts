/**
 * Streams a NumPy .npy array (format 1.0 to 3.0, C order) into one dataset column,
 * converting to its storage dtype as it goes: float32 and float64 (stored as float32),
 * float16 (as float32), int8..int64 and uint16..uint64 (as int32, refused past its range),
 * uint8, bool.
 */
import { ApiError, SpecError } from '../errors.ts';
import type { ColumnWriter } from './column-writer.ts';
import type { Dtype, StoredArray } from './dtypes.ts';
import type { DatasetStage } from './stage.ts';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const CHUNK_BYTES = 1 << 20;

export interface NpyHeader {
  descr: string;
  fortran: boolean;
  shape: number[];
  /** Bytes of one value in the file. */
  itemsize: number;
  /** How values are stored. */
  dtype: Dtype;
  /** Header bytes before the data. */
  dataOffset: number;
}

/** numpy type code -> [bytes, storage dtype]. */
const KINDS: Record<string, [number, Dtype]> = {
  f4: [4, 'float32'], f8: [8, 'float32'], f2: [2, 'float32'],
  i1: [1, 'int32'], i2: [2, 'int32'], i4: [4, 'int32'], i8: [8, 'int32'],
  u1: [1, 'uint8'], u2: [2, 'int32'], u4: [4, 'int32'], u8: [8, 'int32'],
  b1: [1, 'bool'],
};

export function isNpy(head: Uint8Array): boolean {
  return head.length >= 6 && MAGIC.equals(Buffer.from(head.buffer, head.byteOffset, 6));
}

/**
 * Parses the header at the start of `buf`; returns null when `buf` is too short to hold it.
 * Throws DATASET_INVALID for what is not supported, naming `where`.
 */
export function parseNpyHeader(buf: Buffer, where: string): NpyHeader | null {
  const bad = (message: string): never => {
    throw new SpecError(where, `${where}: ${message}`, 'DATASET_INVALID');
  };
  if (buf.length < 10) return null;
  if (!isNpy(buf)) bad('not a .npy file (it must start with \\x93NUMPY)');
  const major = buf[6]!;
  let len: number;
  let start: number;
  if (major === 1) {
    len = buf.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) return null;
    len = buf.readUInt32LE(8);
    start = 12;
  } else {
    return bad(`.npy format version ${major} is not supported (1, 2 or 3)`);
  }
  if (len > 1 << 20) bad('the .npy header is over 1 MiB');
  if (buf.length < start + len) return null;
  const text = buf.toString(major === 3 ? 'utf8' : 'latin1', start, start + len);
  const descrMatch = /['"]descr['"]\s*:\s*(['"])([^'"]*)\1/.exec(text);
  if (!descrMatch) {
    if (/['"]descr['"]\s*:\s*\[/.test(text)) bad('structured arrays (record dtypes) are not supported; save each field as its own array');
    bad('the .npy header has no descr');
  }
  const descr = descrMatch![2]!;
  const fortranMatch = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  if (!fortranMatch) bad('the .npy header has no fortran_order');
  const shapeMatch = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!shapeMatch) bad('the .npy header has no shape');
  const shape = shapeMatch![1]!.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    const d = Number(s.replace(/L$/, ''));
    if (!Number.isSafeInteger(d) || d < 0) bad(`the .npy shape has ${JSON.stringify(s)}`);
    return d;
  });
  const order = descr[0]!;
  const code = descr.slice(1);
  if (code === 'O') bad('object arrays (dtype=object) cannot be loaded; convert to a numeric dtype (e.g. x.astype(np.float32))');
  if (/^[USaV]/.test(code)) bad(`string or raw arrays (dtype ${descr}) are not supported; encode labels as integers, or upload a CSV, whose string label columns are mapped to integers`);
  const kind = KINDS[code];
  if (!kind) bad(`dtype ${descr} is not supported (float16/32/64, int8..int64, uint8..uint64, bool)`);
  const [itemsize, dtype] = kind!;
  if (order === '>' && itemsize > 1) bad(`big-endian arrays (dtype ${descr}) are not supported; save with x.astype(x.dtype.newbyteorder("<"))`);
  if (!'<>|='.includes(order)) bad(`dtype ${descr} is not supported`);
  const fortran = fortranMatch![1] === 'True';
  const rowSize = shape.slice(1).reduce((a, b) => a * b, 1);
  if (fortran && shape.length > 1 && rowSize > 1 && shape[0]! > 1) {
    bad('the array is in Fortran order; only C order is supported: save it with np.save(f, np.ascontiguousarray(x))');
  }
  if (shape.length === 0) bad('a 0-d array (a single value) is not a dataset; give one entry per sample');
  return { descr, fortran, shape, itemsize, dtype, dataOffset: start + len };
}

/** Converts `count` values of the header's dtype at `src` (aligned) into `out`; throws on int32 overflow. */
function convert(h: NpyHeader, src: ArrayBuffer, count: number, out: StoredArray, where: string, firstValue: number): void {
  const code = h.descr.slice(1);
  const overflow = (i: number): never => {
    throw new SpecError(where, `${where} value ${firstValue + i} does not fit in int32 (dtype ${h.descr} is stored as int32)`, 'DATASET_INVALID');
  };
  switch (code) {
    case 'f4': (out as Float32Array).set(new Float32Array(src, 0, count)); break;
    case 'f8': (out as Float32Array).set(new Float64Array(src, 0, count)); break;
    case 'f2': {
      const a = new Uint16Array(src, 0, count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(a[i]!);
      break;
    }
    case 'i1': (out as Int32Array).set(new Int8Array(src, 0, count)); break;
    case 'i2': (out as Int32Array).set(new Int16Array(src, 0, count)); break;
    case 'i4': (out as Int32Array).set(new Int32Array(src, 0, count)); break;
    case 'u2': (out as Int32Array).set(new Uint16Array(src, 0, count)); break;
    case 'u4': {
      const a = new Uint32Array(src, 0, count);
      for (let i = 0; i < count; i++) {
        if (a[i]! > 0x7fffffff) overflow(i);
        out[i] = a[i]!;
      }
      break;
    }
    case 'i8':
    case 'u8': {
      const a = new Int32Array(src, 0, count * 2);
      const signed = code === 'i8';
      for (let i = 0; i < count; i++) {
        const lo = a[2 * i]!;
        const hi = a[2 * i + 1]!;
        if (signed ? hi !== lo >> 31 : hi !== 0 || lo < 0) overflow(i);
        out[i] = lo;
      }
      break;
    }
    case 'u1': (out as Uint8Array).set(new Uint8Array(src, 0, count)); break;
    case 'b1': {
      const a = new Uint8Array(src, 0, count);
      for (let i = 0; i < count; i++) out[i] = a[i] ? 1 : 0;
      break;
    }
    default: throw new Error(`unhandled dtype ${h.descr}`);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function halfToFloat(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return (sign ? -1 : 1) * frac * 2 ** -24;
  if (exp === 31) {
    u32[0] = sign | 0x7f800000 | (frac << 13);
    return f32[0]!;
  }
  u32[0] = sign | ((exp + 112) << 23) | (frac << 13);
  return f32[0]!;
}

/** Limits checked against the header before any data is read. */
export interface NpyLimits {
  rows: number;
  columns: number;
  bytes: number;
}

/**
 * Reads a .npy stream into a new column of `stage`. `side`/`name` name the column
 * (x, y, x_<input>, y_<output>). Returns the header.
 */
export async function ingestNpy(
  source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  stage: DatasetStage,
  side: 'x' | 'y' | 'w',
  name: string | null,
  limits: NpyLimits,
  where: string,
): Promise<NpyHeader> {
  let head: Buffer = Buffer.alloc(0);
  let header: NpyHeader | null = null;
  let writer: ColumnWriter | null = null;
  let rowBytes = 0;
  let chunk: ArrayBuffer = new ArrayBuffer(0);
  let chunkBytes = 0;
  let fill = 0;
  let out: StoredArray | null = null;
  let received = 0;
  let expected = 0;
  let valuesDone = 0;

  const emit = async (bytes: number) => {
    const count = bytes / header!.itemsize;
    convert(header!, chunk, count, out!, where, valuesDone);
    await writer!.append(out!.subarray(0, count));
    valuesDone += count;
  };

  const take = async (data: Uint8Array) => {
    let off = 0;
    if (received + data.length > expected) {
      throw new SpecError(where, `${where} has more data than its shape [${header!.shape.join(', ')}] holds`, 'DATASET_INVALID');
    }
    received += data.length;
    while (off < data.length) {
      const n = Math.min(chunkBytes - fill, data.length - off);
      new Uint8Array(chunk, fill, n).set(data.subarray(off, off + n));
      fill += n;
      off += n;
      if (fill === chunkBytes) {
        await emit(fill);
        fill = 0;
      }
    }
  };

  for await (const piece of source) {
    const data = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    if (!header) {
      head = head.length ? Buffer.concat([head, data]) : data;
      if (head.length >= 6 && !isNpy(head)) throw new SpecError(where, `${where} is not a .npy file (it must start with \\x93NUMPY)`, 'DATASET_INVALID');
      header = parseNpyHeader(head, where);
      if (!header) continue;
      const rowShape = header.shape.slice(1);
      const rowSize = rowShape.reduce((a, b) => a * b, 1);
      if (rowShape.some((d) => d === 0)) throw new SpecError(where, `${where} has an empty dimension (shape [${header.shape.join(', ')}])`, 'DATASET_INVALID');
      if (rowSize > limits.columns) throw new ApiError('PAYLOAD_TOO_LARGE', `${where} has ${rowSize} values per sample, over the limit of ${limits.columns} (MAX_UPLOAD_COLUMNS)`, where);
      if (header.shape[0]! > limits.rows) throw new ApiError('PAYLOAD_TOO_LARGE', `${where} has ${header.shape[0]} samples, over the limit of ${limits.rows} (MAX_UPLOAD_ROWS)`, where);
      rowBytes = rowSize * header.itemsize;
      expected = header.shape[0]! * rowBytes;
      if (expected > limits.bytes) throw new ApiError('PAYLOAD_TOO_LARGE', `${where} holds ${expected} bytes, over the limit of ${limits.bytes} (MAX_UPLOAD_BYTES)`, where);
      writer = await stage.column(side, name, header.dtype, rowShape);
      const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
      chunkBytes = rowsPerChunk * rowBytes;
      chunk = new ArrayBuffer(chunkBytes);
      out = new ({ float32: Float32Array, int32: Int32Array, uint8: Uint8Array, bool: Uint8Array }[header.dtype])(rowsPerChunk * rowSize);
      await take(head.subarray(header.dataOffset));
      head = Buffer.alloc(0);
      continue;
    }
    await take(data);
  }
  if (!header) throw new SpecError(where, `${where} ends before the end of its .npy header`, 'DATASET_INVALID');
  if (received !== expected) {
    throw new SpecError(where, `${where} ends after ${Math.floor(received / Math.max(1, rowBytes))} of its ${header.shape[0]} samples (${received} of ${expected} data bytes)`, 'DATASET_INVALID');
  }
  if (fill > 0) await emit(fill);
  return header;
}
