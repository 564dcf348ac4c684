/**
 * Reads batches of a dataset from its column files by file offset, in the order of an
 * EpochPlan: the blocks of the window a batch falls in are read (one read per block and
 * column, in parallel), converted to float32, and the next window is read ahead while the
 * current one is used. At most the current and next windows are held.
 */
import fs from 'node:fs/promises';
import type { ArrayColumn } from '../model-spec/types.ts';
import { allocate, bytesPerValue, toFloat32, type Dtype, type StoredArray } from './dtypes.ts';
import type { EpochPlan } from './order.ts';

/** Rows [first, first + rows) of a column file. */
export interface StoredSlice {
  path: string;
  dtype: Dtype;
  first: number;
  rows: number;
}

/** A column the reader reads: from a file, or (mixed sets) from memory. */
export type ReaderColumn = { shape: number[]; stored: StoredSlice } | ArrayColumn;

const isStored = (c: ReaderColumn): c is { shape: number[]; stored: StoredSlice } => 'stored' in c;

interface Window {
  /** Per column: the window's rows (float32, or the stored dtype when raw), block slot by block slot. */
  data: Array<StoredArray | null>;
}

/** Open file handles shared by readers of one dataset, closed together. */
export class FileCache {
  private readonly handles = new Map<string, Promise<fs.FileHandle>>();

  open(path: string): Promise<fs.FileHandle> {
    let h = this.handles.get(path);
    if (!h) {
      h = fs.open(path, 'r');
      this.handles.set(path, h);
      h.catch(() => this.handles.delete(path));
    }
    return h;
  }

  async close(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(all.map((h) => h.then((fh) => fh.close(), () => {})));
  }
}

export class WindowReader {
  private readonly rowSizes: number[];
  private readonly windows = new Map<number, Promise<Window>>();
  /** Block -> its slot within its window. */
  private readonly blockSlot: Int32Array;
  /** Block -> its window. */
  private readonly blockWindow: Int32Array;
  private failed: unknown = null;
  /** Bytes read from files so far (for benchmarks). */
  bytesRead = 0;

  /**
   * `raw`: keep each stored column's own dtype (batch() then returns Int32Array / Uint8Array
   * for those columns) instead of converting to float32; for copying rows (split).
   */
  constructor(private readonly cols: ReaderColumn[], private readonly plan: EpochPlan, private readonly files: FileCache, private readonly raw = false) {
    this.rowSizes = cols.map((c) => c.shape.reduce((a, b) => a * b, 1));
    const { layout } = plan;
    const nb = Math.ceil(layout.n / layout.blockRows);
    this.blockSlot = new Int32Array(nb);
    this.blockWindow = new Int32Array(nb);
    for (let i = 0; i < nb; i++) {
      const b = plan.blockOrder ? plan.blockOrder[i]! : i;
      this.blockSlot[b] = i % layout.blocksPerWindow;
      this.blockWindow[b] = Math.floor(i / layout.blocksPerWindow);
    }
  }

  get windowCount(): number {
    return this.plan.windowStarts.length - 1;
  }

  private windowOf(pos: number): number {
    // Windows hold blocksPerWindow full blocks except the one with the short last block: search.
    const s = this.plan.windowStarts;
    let lo = 0;
    let hi = s.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private load(w: number): Promise<Window> {
    let p = this.windows.get(w);
    if (!p) {
      p = this.read(w);
      // A failed read-ahead is reported when (and if) the window is used.
      p.catch((err) => {
        this.failed ??= err;
      });
      this.windows.set(w, p);
    }
    return p;
  }

  private async read(w: number): Promise<Window> {
    const { layout } = this.plan;
    const k = layout.blocksPerWindow;
    const nb = this.blockSlot.length;
    const first = w * k;
    const last = Math.min(nb, first + k);
    const slots = last - first;
    const data: Array<StoredArray | null> = this.cols.map((c, ci) => {
      if (!isStored(c)) return null;
      const length = slots * layout.blockRows * this.rowSizes[ci]!;
      return this.raw ? allocate(c.stored.dtype, length) : new Float32Array(length);
    });
    const reads: Array<Promise<void>> = [];
    for (let i = first; i < last; i++) {
      const b = this.plan.blockOrder ? this.plan.blockOrder[i]! : i;
      const slot = i - first;
      const rowStart = b * layout.blockRows;
      const rows = Math.min(layout.n, rowStart + layout.blockRows) - rowStart;
      this.cols.forEach((c, ci) => {
        if (!isStored(c)) return;
        reads.push(this.readBlock(c.stored, this.rowSizes[ci]!, rowStart, rows, data[ci]!, slot * layout.blockRows * this.rowSizes[ci]!));
      });
    }
    await Promise.all(reads);
    return { data };
  }

  private async readBlock(s: StoredSlice, rowSize: number, row: number, rows: number, out: StoredArray, offset: number): Promise<void> {
    const per = bytesPerValue(s.dtype);
    const bytes = rows * rowSize * per;
    const position = (s.first + row) * rowSize * per;
    const fh = await this.files.open(s.path);
    // float32 files (and any file, raw) are read straight into the window; others through a buffer, converted.
    const direct = this.raw || s.dtype === 'float32';
    const target = direct
      ? new Uint8Array(out.buffer, out.byteOffset + offset * out.BYTES_PER_ELEMENT, bytes)
      : new Uint8Array(bytes);
    let done = 0;
    while (done < bytes) {
      const { bytesRead } = await fh.read(target, done, bytes - done, position + done);
      if (bytesRead === 0) throw new Error(`${s.path} ends before row ${s.first + row + rows} (a damaged dataset file)`);
      done += bytesRead;
    }
    this.bytesRead += bytes;
    if (!direct) toFloat32(s.dtype, target, out as Float32Array, offset);
  }

  /** Local row (within its window's buffers) of a row index. */
  private local(r: number): number {
    const B = this.plan.layout.blockRows;
    const b = Math.floor(r / B);
    return this.blockSlot[b]! * B + (r - b * B);
  }

  /**
   * The rows at positions [start, end) of the plan, one new float32 array per column.
   * Starts reading the window after the last one it touches.
   */
  async batch(start: number, end: number): Promise<Float32Array[]> {
    return (await this.rows(start, end)) as Float32Array[];
  }

  /** As batch(), in the stored dtypes when the reader is raw. */
  async rows(start: number, end: number): Promise<StoredArray[]> {
    if (this.failed) throw this.failed;
    const w0 = this.windowOf(start);
    const w1 = this.windowOf(end - 1);
    for (const w of [...this.windows.keys()]) if (w < w0) this.windows.delete(w);
    const loaded: Window[] = [];
    for (let w = w0; w <= w1; w++) loaded.push(await this.load(w));
    if (w1 + 1 < this.windowCount) void this.load(w1 + 1);
    const n = end - start;
    const order = this.plan.order;
    return this.cols.map((c, ci) => {
      const size = this.rowSizes[ci]!;
      const out = this.raw && isStored(c) ? allocate(c.stored.dtype, n * size) : new Float32Array(n * size);
      for (let p = start; p < end; p++) {
        const r = order ? order[p]! : p;
        if (!isStored(c)) {
          out.set(c.data.subarray(r * size, (r + 1) * size), (p - start) * size);
          continue;
        }
        const w = this.blockWindow[Math.floor(r / this.plan.layout.blockRows)]!;
        const src = loaded[w - w0]!.data[ci]!;
        const l = this.local(r) * size;
        if (size === 1) out[p - start] = src[l]!;
        else out.set(src.subarray(l, l + size), (p - start) * size);
      }
      return out;
    });
  }

  /** Drops held windows (waiting for reads in flight, so no file is read after close). */
  async release(): Promise<void> {
    const pending = [...this.windows.values()];
    this.windows.clear();
    await Promise.allSettled(pending);
  }
}
