/** Test helpers: NumPy .npy / .npz files written the way numpy writes them, and a multipart body. */
import zlib from 'node:zlib';

export type NpyDescr = '<f4' | '<f8' | '<f2' | '<i4' | '<i8' | '|u1' | '|b1' | '<i2' | '|i1' | '<u2' | '<u4' | '<u8' | '>f4' | '|O' | '<U5';

/** A .npy file (format 1.0) holding `values` (row-major) with `shape`. */
export function npy(descr: NpyDescr, shape: number[], values: ArrayLike<number>, opts: { fortran?: boolean; version?: 1 | 2 } = {}): Buffer {
  const dict = `{'descr': '${descr}', 'fortran_order': ${opts.fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const version = opts.version ?? 1;
  const pre = version === 1 ? 10 : 12;
  let header = dict;
  while ((pre + header.length + 1) % 64 !== 0) header += ' ';
  header += '\n';
  const head = Buffer.alloc(pre);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head);
  if (version === 1) head.writeUInt16LE(header.length, 8);
  else head.writeUInt32LE(header.length, 8);
  const n = values.length;
  let data: Buffer;
  switch (descr) {
    case '<f4': data = Buffer.from(Float32Array.from(values).buffer); break;
    case '>f4': {
      data = Buffer.alloc(n * 4);
      for (let i = 0; i < n; i++) data.writeFloatBE(values[i]!, i * 4);
      break;
    }
    case '<f8': data = Buffer.from(Float64Array.from(values).buffer); break;
    case '<f2': {
      data = Buffer.alloc(n * 2);
      for (let i = 0; i < n; i++) data.writeUInt16LE(floatToHalf(values[i]!), i * 2);
      break;
    }
    case '<i4': data = Buffer.from(Int32Array.from(values).buffer); break;
    case '<i2': data = Buffer.from(Int16Array.from(values).buffer); break;
    case '|i1': data = Buffer.from(Int8Array.from(values).buffer); break;
    case '<u2': data = Buffer.from(Uint16Array.from(values).buffer); break;
    case '<u4': data = Buffer.from(Uint32Array.from(values).buffer); break;
    case '<i8': data = Buffer.from(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer); break;
    case '<u8': data = Buffer.from(BigUint64Array.from(Array.from(values, (v) => BigInt(v))).buffer); break;
    case '|u1': data = Buffer.from(Uint8Array.from(values)); break;
    case '|b1': data = Buffer.from(Uint8Array.from(values, (v) => (v ? 1 : 0))); break;
    default: data = Buffer.alloc(n * 8);
  }
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data]);
}

function floatToHalf(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >> 16) & 0x8000;
  const exp = ((u >> 23) & 0xff) - 127 + 15;
  if (v === 0) return sign;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | ((u >> 13) & 0x3ff);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip (np.savez writes stored entries, np.savez_compressed deflated ones). */
export function npz(entries: Record<string, Buffer>, compressed = false): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(entries)) {
    const fileName = Buffer.from(name.endsWith('.npy') ? name : `${name}.npy`);
    const body = compressed ? zlib.deflateRawSync(data) : data;
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0, 6);
    local.writeUInt16LE(compressed ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(fileName.length, 26);
    locals.push(local, fileName, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(compressed ? 8 : 0, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(fileName.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, fileName);
    offset += 30 + fileName.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(entries).length, 8);
  end.writeUInt16LE(Object.keys(entries).length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** A multipart/form-data body: fields (strings) and files (buffers). */
export function multipartBody(parts: Array<[string, string | Buffer, string?]>): { body: Buffer; type: string } {
  const boundary = `----kts${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const [name, value, filename] of parts) {
    const disposition = typeof value === 'string' && !filename
      ? `Content-Disposition: form-data; name="${name}"\r\n\r\n`
      : `Content-Disposition: form-data; name="${name}"; filename="${filename ?? name}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
    chunks.push(Buffer.from(`--${boundary}\r\n${disposition}`), Buffer.isBuffer(value) ? value : Buffer.from(value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}
