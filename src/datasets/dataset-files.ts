import fs from 'node:fs/promises';
import path from 'node:path';
import type { ArrayColumn } from '../model-spec/types.ts';
import type { ColumnInfo, DatasetRecord } from './dataset-record.ts';
import { paths, writeDirAtomically } from '../storage/paths.ts';

/** A column ready to store. */
export interface ColumnToWrite {
  info: ColumnInfo;
  data: Float32Array;
}

/**
 * Writes the dataset's columns, one raw little-endian float32 file each, plus a
 * manifest, into DATA_DIR atomically.
 */
export async function writeDatasetFiles(dataDir: string, tenant: string, rec: DatasetRecord, columns: ColumnToWrite[]): Promise<void> {
  await writeDirAtomically(dataDir, paths.dataset(dataDir, tenant, rec.id), async (dir) => {
    for (const col of columns) {
      await fs.writeFile(path.join(dir, col.info.file), new Uint8Array(col.data.buffer, col.data.byteOffset, col.data.byteLength));
    }
    await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(rec, null, 2));
  });
}

/** Reads one stored column whole (datasets here are small; streaming is the datasets issue). */
export async function readColumn(dataDir: string, tenant: string, datasetId: string, info: ColumnInfo, samples: number): Promise<ArrayColumn> {
  const buf = await fs.readFile(path.join(paths.dataset(dataDir, tenant, datasetId), info.file));
  const want = samples * info.shape.reduce((a, b) => a * b, 1) * 4;
  if (buf.byteLength !== want) throw new Error(`dataset ${datasetId} file ${info.file} has ${buf.byteLength} bytes, expected ${want}`);
  // Copy into an aligned buffer: readFile's Buffer may sit at an unaligned offset in a pool.
  const data = new Float32Array(want / 4);
  new Uint8Array(data.buffer).set(buf);
  return { shape: info.shape, data };
}

export async function removeDatasetFiles(dataDir: string, tenant: string, datasetId: string): Promise<void> {
  await fs.rm(paths.dataset(dataDir, tenant, datasetId), { recursive: true, force: true });
}
