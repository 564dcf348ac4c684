/**
 * Streams a CSV (header row required) into dataset columns: feature columns become one
 * float32 x column of shape [features], label columns one y column (shape [] for one label,
 * [k] for k). Label columns of strings are mapped to integers by a sorted vocabulary kept
 * on the column. Nothing is held but one chunk of rows and the vocabularies.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ApiError, SpecError } from '../errors.ts';
import type { ColumnWriter } from './column-writer.ts';
import type { DatasetStage } from './stage.ts';
import { parseNumber, parseNumberText } from './numbers.ts';

const QUOTE = 34;
const LF = 10;
const CR = 13;
/** Bytes gathered before a parse pass (fewer copies of a row split between two chunks). */
const GATHER_BYTES = 1 << 20;
/** Values per output chunk handed to the column writers. */
const CHUNK_VALUES = 1 << 18;
/** Distinct strings a label column may have. */
export const MAX_VOCABULARY = 100_000;

export interface CsvRoles {
  /** CSV column names for x, in order (empty: no x). */
  features: string[];
  /** CSV column names for y, in order (empty: no y). */
  labels: string[];
  /** The CSV column holding each sample's weight (Keras's sample_weight), if any. */
  weight?: string;
}

export interface CsvOptions {
  /** The field separator (one byte). */
  delimiter: number;
  /** Picks the feature and label columns once the header is read (throws SpecError). */
  roles: (header: string[]) => CsvRoles;
  /** The name of the x and y columns (null: the unnamed single x / y). */
  xName?: string | null;
  yName?: string | null;
  /** Limit on header columns (413 past it). */
  maxColumns: number;
  /** Where errors point ("body", "x", ...). */
  where: string;
  /** Bytes gathered before a parse pass (tests use tiny values to exercise chunk boundaries). */
  gatherBytes?: number;
}

/** Field boundaries of one row. */
class RowFields {
  start = new Int32Array(64);
  end = new Int32Array(64);
  quoted = new Uint8Array(64);
  count = 0;

  push(s: number, e: number, q: number, max: number, where: string): void {
    if (this.count === this.start.length) {
      if (this.count >= max + 1) throw new ApiError('PAYLOAD_TOO_LARGE', `a row has more than ${max} columns (MAX_UPLOAD_COLUMNS)`, where);
      const grow = <T extends Int32Array | Uint8Array>(a: T, make: (n: number) => T) => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.start = grow(this.start, (n) => new Int32Array(n));
      this.end = grow(this.end, (n) => new Int32Array(n));
      this.quoted = grow(this.quoted, (n) => new Uint8Array(n));
    }
    this.start[this.count] = s;
    this.end[this.count] = e;
    this.quoted[this.count] = q;
    this.count++;
  }
}

function unquote(buf: Buffer, s: number, e: number): string {
  // s..e spans the quotes.
  return buf.toString('utf8', s + 1, e - 1).replace(/""/g, '"');
}

/**
 * Finds the next row starting at `i`: fills `row` and returns the index after its line end,
 * or -1 when the buffer ends inside it (and `final` is false). Blank lines give a row of count 0.
 */
function scanRow(buf: Buffer, i: number, delim: number, row: RowFields, final: boolean, maxColumns: number, where: string): number {
  const n = buf.length;
  row.count = 0;
  if (i < n && (buf[i] === LF || buf[i] === CR)) {
    // A blank line.
    if (buf[i] === CR) {
      if (i + 1 < n) return buf[i + 1] === LF ? i + 2 : i + 1;
      return final ? n : -1;
    }
    return i + 1;
  }
  for (;;) {
    const s = i;
    let q = 0;
    if (i < n && buf[i] === QUOTE) {
      q = 1;
      i++;
      for (;;) {
        if (i >= n) {
          if (!final) return -1;
          throw new SpecError(where, 'the CSV ends inside a quoted field', 'DATASET_INVALID');
        }
        if (buf[i] === QUOTE) {
          if (i + 1 < n && buf[i + 1] === QUOTE) {
            i += 2;
            continue;
          }
          if (i + 1 >= n && !final) return -1;
          i++;
          break;
        }
        i++;
      }
      if (i < n && buf[i] !== delim && buf[i] !== LF && buf[i] !== CR) {
        throw new SpecError(where, 'a quoted CSV field must end at a delimiter or a line end', 'DATASET_INVALID');
      }
    } else {
      while (i < n) {
        const c = buf[i]!;
        if (c === delim || c === LF || c === CR) break;
        i++;
      }
    }
    row.push(s, i, q, maxColumns, where);
    if (i >= n) return final ? n : -1;
    const c = buf[i]!;
    if (c === delim) {
      i++;
      continue;
    }
    if (c === CR) {
      if (i + 1 >= n) return final ? n : -1;
      return buf[i + 1] === LF ? i + 2 : i + 1;
    }
    return i + 1; // LF
  }
}

/** What the quote-free fast path needs, and where it writes. */
interface FastRows {
  delim: number;
  /** Per header column: feature index j, F + label index, F + L for the sample weight, or -1 (unused). */
  role: Int32Array;
  features: number;
  labels: number;
  numeric: Uint8Array;
  vocab: Array<Map<string, number>>;
  xBuf: Float32Array;
  yBuf: Float32Array | Int32Array;
  wBuf: Float32Array;
  chunkRows: number;
  rowsInChunk: number;
  dataRows: number;
  /** Set when the row at the returned position needs the general path (or an error message). */
  slow: boolean;
}

/**
 * Parses complete lines of a buffer without quotes from `i` to `limit` straight into the
 * output chunks (no per-row field table). Stops at `limit`, at a full chunk, or before a row
 * it does not handle (wrong field count, a value that is not a number, a lone CR): that row
 * then goes through scanRow/onRow, which give the general semantics and the error messages.
 */
function fastRows(buf: Buffer, i: number, limit: number, c: FastRows): number {
  const H = c.role.length;
  while (i < limit && c.rowsInChunk < c.chunkRows) {
    let lineEnd = buf.indexOf(LF, i);
    if (lineEnd < 0 || lineEnd >= limit) lineEnd = limit;
    let e = lineEnd;
    if (e > i && buf[e - 1] === CR) e--;
    if (e === i) {
      i = lineEnd + 1;
      continue;
    }
    const xo = c.rowsInChunk * c.features;
    const yo = c.rowsInChunk * c.labels;
    let s = i;
    let k = 0;
    for (; k < H; k++) {
      let t = s;
      while (t < e && buf[t] !== c.delim) t++;
      if ((t === e) !== (k === H - 1)) {
        c.slow = true;
        return i;
      }
      const r = c.role[k]!;
      if (r >= 0) {
        if (r < c.features) {
          const v = parseNumber(buf, s, t);
          if (!(v - v === 0)) {
            c.slow = true;
            return i;
          }
          c.xBuf[xo + r] = v;
        } else if (r === c.features + c.labels) {
          const v = parseNumber(buf, s, t);
          if (!(v - v === 0) || v < 0) {
            c.slow = true;
            return i;
          }
          c.wBuf[c.rowsInChunk] = v;
        } else {
          const j = r - c.features;
          if (c.numeric[j]) {
            const v = parseNumber(buf, s, t);
            if (!(v - v === 0)) {
              c.slow = true;
              return i;
            }
            c.yBuf[yo + j] = v;
          } else {
            const text = buf.toString('utf8', s, t);
            if (text.includes('\r')) {
              c.slow = true;
              return i;
            }
            const map = c.vocab[j]!;
            let id = map.get(text);
            if (id === undefined) {
              if (map.size >= MAX_VOCABULARY) {
                c.slow = true;
                return i;
              }
              id = map.size;
              map.set(text, id);
            }
            c.yBuf[yo + j] = id;
          }
        }
      }
      s = t + 1;
    }
    c.rowsInChunk++;
    c.dataRows++;
    i = lineEnd + 1;
  }
  return i;
}

type LabelKind = 'number' | 'string';

/** Reads a CSV stream into the stage. Returns the samples written. */
export async function ingestCsv(source: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>, stage: DatasetStage, opts: CsvOptions): Promise<number> {
  const where = opts.where;
  const row = new RowFields();
  let header: string[] | null = null;
  let featureIdx: Int32Array = new Int32Array(0);
  let labelIdx: Int32Array = new Int32Array(0);
  let weightIdx = -1;
  let wWriter: ColumnWriter | null = null;
  let wBuf = new Float32Array(0);
  let labelNames: string[] = [];
  let kinds: LabelKind[] = [];
  let vocab: Array<Map<string, number>> = [];
  let xWriter: ColumnWriter | null = null;
  let yWriter: ColumnWriter | null = null;
  /** String labels go to a raw file first: their ids are remapped to the sorted vocabulary at the end. */
  let yRaw: fs.FileHandle | null = null;
  let yRawPath = '';
  let xBuf = new Float32Array(0);
  let yBuf: Float32Array | Int32Array = new Float32Array(0);
  let chunkRows = 1;
  let rowsInChunk = 0;
  let dataRows = 0;
  let first = true;

  const F = () => featureIdx.length;
  const L = () => labelIdx.length;

  const fail = (message: string): never => {
    throw new SpecError(where, message, 'DATASET_INVALID');
  };

  const fieldText = (buf: Buffer, k: number): string => {
    const s = row.start[k]!;
    const e = row.end[k]!;
    return row.quoted[k] ? unquote(buf, s, e) : buf.toString('utf8', s, e);
  };

  const fieldNumber = (buf: Buffer, k: number): number => {
    return row.quoted[k] ? parseNumberText(unquote(buf, row.start[k]!, row.end[k]!)) : parseNumber(buf, row.start[k]!, row.end[k]!);
  };

  const onHeader = (buf: Buffer) => {
    const names = Array.from({ length: row.count }, (_, k) => fieldText(buf, k).trim());
    if (first && names[0]?.charCodeAt(0) === 0xfeff) names[0] = names[0].slice(1);
    if (names.length > opts.maxColumns) throw new ApiError('PAYLOAD_TOO_LARGE', `the CSV has ${names.length} columns, over the limit of ${opts.maxColumns} (MAX_UPLOAD_COLUMNS)`, where);
    const seen = new Set<string>();
    for (const name of names) {
      if (name === '') fail('the CSV header has an empty column name (the first row must name every column)');
      if (seen.has(name)) fail(`the CSV header names column "${name}" twice`);
      seen.add(name);
    }
    const roles = opts.roles(names);
    const index = new Map(names.map((n, k) => [n, k]));
    featureIdx = Int32Array.from(roles.features.map((n) => index.get(n)!));
    labelIdx = Int32Array.from(roles.labels.map((n) => index.get(n)!));
    labelNames = roles.labels;
    weightIdx = roles.weight === undefined ? -1 : index.get(roles.weight)!;
    header = names;
    const perRow = Math.max(1, F() + L() + (weightIdx >= 0 ? 1 : 0));
    chunkRows = Math.max(1, Math.floor(CHUNK_VALUES / perRow));
  };

  const startColumns = async (buf: Buffer) => {
    // The first data row decides each label column's kind: numbers, or strings mapped to integers.
    kinds = Array.from(labelIdx, (k) => (Number.isNaN(fieldNumber(buf, k)) ? 'string' : 'number'));
    vocab = kinds.map(() => new Map<string, number>());
    if (F() > 0) {
      xWriter = await stage.column('x', opts.xName ?? null, 'float32', [F()]);
      xWriter.extra.columns = Array.from(featureIdx, (k) => header![k]!);
      xBuf = new Float32Array(chunkRows * F());
    }
    if (weightIdx >= 0) {
      wWriter = await stage.column('w', null, 'float32', []);
      wWriter.extra.columns = [header![weightIdx]!];
      wBuf = new Float32Array(chunkRows);
    }
    if (L() > 0) {
      const allStrings = kinds.every((k) => k === 'string');
      yWriter = await stage.column('y', opts.yName ?? null, allStrings ? 'int32' : 'float32', L() === 1 ? [] : [L()]);
      yWriter.extra.columns = labelNames.slice();
      yBuf = allStrings ? new Int32Array(chunkRows * L()) : new Float32Array(chunkRows * L());
      if (kinds.includes('string')) {
        yRawPath = path.join(stage.dir, `${yWriter.file}.raw`);
        yRaw = await fs.open(yRawPath, 'wx');
      }
    }
  };

  const flush = async () => {
    if (rowsInChunk === 0) return;
    if (xWriter) await xWriter.append(xBuf.subarray(0, rowsInChunk * F()));
    if (wWriter) await wWriter.append(wBuf.subarray(0, rowsInChunk));
    if (yWriter) {
      const ys = yBuf.subarray(0, rowsInChunk * L());
      if (yRaw) {
        const bytes = new Uint8Array(ys.buffer, ys.byteOffset, ys.byteLength);
        let done = 0;
        while (done < bytes.length) done += (await yRaw.write(bytes, done, bytes.length - done)).bytesWritten;
      } else {
        await yWriter.append(ys);
      }
    }
    rowsInChunk = 0;
  };

  const onRow = (buf: Buffer) => {
    const f = F();
    const l = L();
    if (row.count !== header!.length) {
      fail(`data row ${dataRows + 1} has ${row.count} fields but the header has ${header!.length}`);
    }
    let o = rowsInChunk * f;
    for (let j = 0; j < f; j++) {
      const k = featureIdx[j]!;
      const v = fieldNumber(buf, k);
      if (!Number.isFinite(v)) {
        const text = fieldText(buf, k);
        fail(text.trim() === ''
          ? `column "${header![k]}" has no value in data row ${dataRows + 1}; every feature needs a number`
          : `column "${header![k]}" holds ${JSON.stringify(text.slice(0, 40))} in data row ${dataRows + 1}, not a finite number; give non-numeric columns as label= or leave them out of features=`);
      }
      xBuf[o++] = v;
    }
    if (weightIdx >= 0) {
      const v = fieldNumber(buf, weightIdx);
      if (!Number.isFinite(v) || v < 0) {
        fail(`sample-weight column "${header![weightIdx]}" holds ${JSON.stringify(fieldText(buf, weightIdx).slice(0, 40))} in data row ${dataRows + 1}; sample weights must be numbers >= 0`);
      }
      wBuf[rowsInChunk] = v;
    }
    o = rowsInChunk * l;
    for (let j = 0; j < l; j++) {
      const k = labelIdx[j]!;
      if (kinds[j] === 'number') {
        const v = fieldNumber(buf, k);
        if (!Number.isFinite(v)) {
          fail(`label column "${header![k]}" holds ${JSON.stringify(fieldText(buf, k).slice(0, 40))} in data row ${dataRows + 1}, but its first rows were numbers`);
        }
        yBuf[o++] = v;
      } else {
        const text = fieldText(buf, k);
        const map = vocab[j]!;
        let id = map.get(text);
        if (id === undefined) {
          if (map.size >= MAX_VOCABULARY) fail(`label column "${header![k]}" has more than ${MAX_VOCABULARY} distinct values`);
          id = map.size;
          map.set(text, id);
        }
        yBuf[o++] = id;
      }
    }
    rowsInChunk++;
    dataRows++;
  };

  /** Parses complete rows of buf from `pos`; returns where it stopped (a partial row, or a full chunk). */
  let role: Int32Array | null = null;

  /** The fast path over quote-free data, once the header is read and the columns started. */
  const fast = (buf: Buffer, i: number, final: boolean): { i: number; slow: boolean } => {
    if (!role) {
      role = new Int32Array(header!.length).fill(-1);
      featureIdx.forEach((k, j) => (role![k] = j));
      labelIdx.forEach((k, j) => (role![k] = F() + j));
      if (weightIdx >= 0) role[weightIdx] = F() + L();
    }
    const limit = final ? buf.length : buf.lastIndexOf(LF) + 1;
    if (limit <= i) return { i, slow: false };
    const c: FastRows = {
      delim: opts.delimiter, role, features: F(), labels: L(), numeric: Uint8Array.from(kinds, (k) => (k === 'number' ? 1 : 0)), vocab,
      xBuf, yBuf, wBuf, chunkRows, rowsInChunk, dataRows, slow: false,
    };
    const next = fastRows(buf, i, limit, c);
    rowsInChunk = c.rowsInChunk;
    dataRows = c.dataRows;
    return { i: next, slow: c.slow };
  };

  /** Parses complete rows of buf; returns where it stopped (inside a partial row, or at the end). */
  const parse = async (buf: Buffer, final: boolean): Promise<number> => {
    let i = 0;
    if (first && buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) i = 3;
    const quoteFree = buf.indexOf(QUOTE, i) < 0;
    while (i < buf.length) {
      if (quoteFree && header && (xWriter || yWriter || wWriter)) {
        const r = fast(buf, i, final);
        i = r.i;
        if (rowsInChunk === chunkRows) {
          await flush();
          continue;
        }
        if (!r.slow) break;
      }
      const next = scanRow(buf, i, opts.delimiter, row, final, opts.maxColumns, where);
      if (next < 0) break;
      i = next;
      if (row.count === 0) continue;
      if (!header) {
        onHeader(buf);
        first = false;
        continue;
      }
      if (dataRows === 0 && !xWriter && !yWriter && !wWriter) await startColumns(buf);
      onRow(buf);
      if (rowsInChunk === chunkRows) await flush();
    }
    first = false;
    return i;
  };

  try {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let leftover: Buffer = Buffer.alloc(0);
    for await (const chunk of source) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      pending.push(b);
      pendingBytes += b.length;
      if (pendingBytes < (opts.gatherBytes ?? GATHER_BYTES)) continue;
      const buf = Buffer.concat([leftover, ...pending]);
      pending = [];
      pendingBytes = 0;
      const used = await parse(buf, false);
      leftover = buf.subarray(used);
      if (leftover.length > 64 << 20) fail('a CSV row is longer than 64 MiB');
    }
    const buf = Buffer.concat([leftover, ...pending]);
    await parse(buf, true);
    if (!header) fail('the CSV is empty: it needs a header row naming the columns, then one row per sample');
    await flush();
    if (dataRows === 0) fail('the CSV has a header but no data rows');
    if (yRaw && yWriter) await remapStringLabels(yRaw, yRawPath, yWriter, kinds, vocab, labelNames);
  } finally {
    await (yRaw as fs.FileHandle | null)?.close().catch(() => {});
    if (yRawPath) await fs.rm(yRawPath, { force: true });
  }
  return dataRows;
}

/** Rewrites label ids (first-appearance order) to indices of each column's sorted vocabulary. */
async function remapStringLabels(raw: fs.FileHandle, rawPath: string, writer: ColumnWriter, kinds: LabelKind[], vocab: Array<Map<string, number>>, names: string[]): Promise<void> {
  await raw.close();
  const L = kinds.length;
  const tables: Array<Int32Array | null> = [];
  const vocabulary: Record<string, string[]> = {};
  kinds.forEach((kind, j) => {
    if (kind !== 'string') {
      tables.push(null);
      return;
    }
    const words = [...vocab[j]!.keys()].sort();
    const table = new Int32Array(words.length);
    words.forEach((w, idx) => (table[vocab[j]!.get(w)!] = idx));
    tables.push(table);
    vocabulary[names[j]!] = words;
  });
  writer.extra.vocabulary = vocabulary;
  const allStrings = kinds.every((k) => k === 'string');
  const fh = await fs.open(rawPath, 'r');
  try {
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_VALUES / L));
    const bytes = new Uint8Array(rowsPerChunk * L * 4);
    const out = allStrings ? new Int32Array(rowsPerChunk * L) : new Float32Array(rowsPerChunk * L);
    const ints = new Int32Array(bytes.buffer);
    const floats = new Float32Array(bytes.buffer);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(bytes, 0, bytes.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      const n = bytesRead / 4;
      for (let i = 0; i < n; i++) {
        const table = tables[i % L];
        if (table) out[i] = table[allStrings ? ints[i]! : floats[i]!]!;
        else out[i] = floats[i]!;
      }
      await writer.append(out.subarray(0, n));
    }
  } finally {
    await fh.close();
  }
}

/** Splits a comma-separated query value into names (empty -> []). */
export function nameList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * Roles from `label=` and `features=` (features default to every other column); throws
 * naming an unknown column.
 */
export function queryRoles(labels: string[], features: string[] | null, path: { label: string; features: string; weight?: string }, weight?: string): (header: string[]) => CsvRoles {
  return (header) => {
    const known = new Set(header);
    const list = header.length > 12 ? `${header.slice(0, 12).join(', ')}, ...` : header.join(', ');
    const wPath = path.weight ?? 'query.sample_weight';
    if (weight !== undefined) {
      if (!known.has(weight)) throw new SpecError(wPath, `sample-weight column "${weight}" is not in the CSV header (${list})`, 'DATASET_INVALID');
      if (labels.includes(weight)) throw new SpecError(wPath, `column "${weight}" cannot be both a label and the sample weight`, 'DATASET_INVALID');
      if (features?.includes(weight)) throw new SpecError(wPath, `column "${weight}" cannot be both a feature and the sample weight`, 'DATASET_INVALID');
    }
    for (const l of labels) if (!known.has(l)) throw new SpecError(path.label, `label column "${l}" is not in the CSV header (${list})`, 'DATASET_INVALID');
    if (new Set(labels).size !== labels.length) throw new SpecError(path.label, 'a label column is named twice', 'DATASET_INVALID');
    let feats: string[];
    if (features) {
      for (const f of features) {
        if (!known.has(f)) throw new SpecError(path.features, `feature column "${f}" is not in the CSV header (${list})`, 'DATASET_INVALID');
        if (labels.includes(f)) throw new SpecError(path.features, `column "${f}" cannot be both a feature and a label`, 'DATASET_INVALID');
      }
      if (new Set(features).size !== features.length) throw new SpecError(path.features, 'a feature column is named twice', 'DATASET_INVALID');
      feats = features;
    } else {
      feats = header.filter((h) => !labels.includes(h) && h !== weight);
    }
    if (feats.length === 0) throw new SpecError(path.features, 'the CSV has no feature columns left for x', 'DATASET_INVALID');
    return { features: feats, labels, ...(weight !== undefined ? { weight } : {}) };
  };
}
