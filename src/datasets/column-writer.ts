import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash, type Hash } from 'node:crypto';
import { ApiError, SpecError } from '../errors.ts';
import type { ColumnInfo } from './dataset-record.ts';
import { bytesPerValue, type Dtype, type StoredArray } from './dtypes.ts';
import { NonFiniteValue, StatsAccumulator } from './stats.ts';

/** How a column's values are described in error messages ("x", "y.out1", "column petal_width"). */
export interface ColumnLabel {
  /** w: the sample-weight column. */
  side: 'x' | 'y' | 'w';
  name: string | null;
}

/**
 * Streams one column to its file (raw little-endian values of its dtype), keeping its
 * statistics and SHA-256 as it goes. `append` takes whole samples; the caller may reuse
 * its buffer once the returned promise settles.
 */
export class ColumnWriter {
  readonly file: string;
  readonly rowSize: number;
  rows = 0;
  private fh: fs.FileHandle | null = null;
  private readonly hash: Hash = createHash('sha256');
  private readonly stats: StatsAccumulator;
  private bytes = 0;
  /** Extra fields for the column info (columns, vocabulary). */
  extra: Partial<ColumnInfo> = {};

  constructor(
    readonly dir: string,
    readonly index: number,
    readonly label: ColumnLabel,
    readonly dtype: Dtype,
    readonly shape: number[],
    private readonly maxRows: number,
  ) {
    this.file = `${label.side}-${index}.${{ float32: 'f32', int32: 'i32', uint8: 'u8', bool: 'b8' }[dtype]}`;
    this.rowSize = shape.reduce((a, b) => a * b, 1);
    this.stats = new StatsAccumulator(shape, label.side === 'y');
  }

  get where(): string {
    return this.label.name === null ? this.label.side : `${this.label.side}.${this.label.name}`;
  }

  async open(): Promise<void> {
    this.fh = await fs.open(path.join(this.dir, this.file), 'wx');
  }

  /** Appends whole samples. Throws 413 past the row limit and 422 for NaN or infinite values. */
  async append(values: StoredArray): Promise<void> {
    if (values.length === 0) return;
    if (values.length % this.rowSize !== 0) throw new Error(`${this.where}: ${values.length} values is not a whole number of samples of ${this.rowSize}`);
    const rows = values.length / this.rowSize;
    if (this.rows + rows > this.maxRows) {
      throw new ApiError('PAYLOAD_TOO_LARGE', `${this.where} has more than ${this.maxRows} samples (MAX_UPLOAD_ROWS)`, this.where);
    }
    try {
      this.stats.update(values);
    } catch (err) {
      if (err instanceof NonFiniteValue) {
        const row = this.rows + Math.floor((err.index - this.rows * this.rowSize) / this.rowSize);
        throw new SpecError(this.where, `${this.where} sample ${row} holds ${err.value}; every value must be a finite number`, 'DATASET_INVALID');
      }
      throw err;
    }
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    this.hash.update(bytes);
    if (!this.fh) await this.open();
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesWritten } = await this.fh!.write(bytes, done, bytes.byteLength - done);
      done += bytesWritten;
    }
    this.bytes += bytes.byteLength;
    this.rows += rows;
  }

  /** Closes the file and describes the column. */
  async finish(): Promise<ColumnInfo> {
    if (!this.fh) await this.open();
    await this.fh!.close();
    this.fh = null;
    if (this.bytes !== this.rows * this.rowSize * bytesPerValue(this.dtype)) throw new Error(`${this.where}: byte count mismatch`);
    const s = this.stats.result();
    return {
      name: this.label.name,
      shape: this.shape,
      dtype: this.dtype,
      min: s.min,
      max: s.max,
      file: this.file,
      mean: s.mean,
      std: s.std,
      ...(s.features ? { features: s.features } : {}),
      ...(s.class_counts ? { class_counts: s.class_counts } : {}),
      ...this.extra,
      bytes: this.bytes,
      sha256: this.hash.digest('hex'),
    };
  }

  async abort(): Promise<void> {
    await this.fh?.close().catch(() => {});
    this.fh = null;
  }
}
