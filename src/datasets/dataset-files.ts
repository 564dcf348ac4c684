import fs from 'node:fs/promises';
import path from 'node:path';
import type { ArrayColumn } from '../model-spec/types.ts';
import type { ColumnInfo, DatasetRecord } from './dataset-record.ts';
import { bytesPerValue, toFloat32 } from './dtypes.ts';
import { paths, writeDirAtomically } from '../storage/paths.ts';

/** A column ready to store (float32, the JSON body form). */
export interface ColumnToWrite {
  info: ColumnInfo;
  data: Float32Array;
}

/** The directory holding a dataset's files (built-ins live in one shared place). */
export function datasetDir(dataDir: string, tenant: string, rec: Pick<DatasetRecord, 'id' | 'storage'>): string {
  return rec.storage ? path.join(dataDir, rec.storage) : paths.dataset(dataDir, tenant, rec.id);
}

/**
 * Writes float32 columns, one raw little-endian file each, plus a manifest, into DATA_DIR
 * atomically (the first format; new datasets go through createDataset in stage.ts).
 */
export async function writeDatasetFiles(dataDir: string, tenant: string, rec: DatasetRecord, columns: ColumnToWrite[]): Promise<void> {
  await writeDirAtomically(dataDir, paths.dataset(dataDir, tenant, rec.id), async (dir) => {
    for (const col of columns) {
      await fs.writeFile(path.join(dir, col.info.file), new Uint8Array(col.data.buffer, col.data.byteOffset, col.data.byteLength));
    }
    await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(rec, null, 2));
  });
}

/** Bytes of one stored sample of a column. */
export function storedRowBytes(info: Pick<ColumnInfo, 'shape' | 'dtype'>): number {
  return info.shape.reduce((a, b) => a * b, 1) * bytesPerValue(info.dtype ?? 'float32');
}

/** Reads one stored column whole, as float32 (any storage dtype). */
export async function readColumnFile(dir: string, info: ColumnInfo, samples: number): Promise<ArrayColumn> {
  const want = samples * storedRowBytes(info);
  const file = path.join(dir, info.file);
  const fh = await fs.open(file, 'r');
  try {
    const { size } = await fh.stat();
    if (size !== want) throw new Error(`dataset file ${info.file} has ${size} bytes, expected ${want}`);
    const data = new Float32Array(samples * info.shape.reduce((a, b) => a * b, 1));
    const chunk = Buffer.allocUnsafe(Math.min(want, 8 << 20) || 1);
    const per = bytesPerValue(info.dtype ?? 'float32');
    let done = 0;
    while (done < want) {
      const len = Math.min(chunk.byteLength - (chunk.byteLength % per), want - done);
      const { bytesRead } = await fh.read(chunk, 0, len, done);
      if (bytesRead !== len) throw new Error(`dataset file ${info.file} ended early`);
      toFloat32(info.dtype ?? 'float32', chunk.subarray(0, len), data, done / per);
      done += len;
    }
    return { shape: info.shape, data };
  } finally {
    await fh.close();
  }
}

/** Reads one stored column whole, as float32. */
export async function readColumn(dataDir: string, tenant: string, datasetId: string, info: ColumnInfo, samples: number): Promise<ArrayColumn> {
  return readColumnFile(paths.dataset(dataDir, tenant, datasetId), info, samples);
}

export async function removeDatasetFiles(dataDir: string, tenant: string, datasetId: string): Promise<void> {
  await fs.rm(paths.dataset(dataDir, tenant, datasetId), { recursive: true, force: true });
}
