/**
 * Reads a .npz (a zip of .npy files, from np.savez or np.savez_compressed) into dataset
 * columns: arrays x and y, or x_<input> / y_<output> for several inputs and outputs.
 * The archive is a file on disk (zip's directory is at its end): the upload is written to a
 * temporary file first, then each array streams from it.
 */
import yauzl from 'yauzl';
import type { Readable } from 'node:stream';
import { ApiError, SpecError } from '../errors.ts';
import { ingestNpy, type NpyLimits } from './npy.ts';
import type { DatasetStage } from './stage.ts';

const ENTRY_RE = /^(x|y)(?:_(.+))?\.npy$/;
/** The optional sample-weight array (Keras's sample_weight). */
const WEIGHT_ENTRY = 'sample_weight.npy';

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: true }, (err, zip) => (err ? reject(err) : resolve(zip!)));
  });
}

function entries(zip: yauzl.ZipFile): Promise<yauzl.Entry[]> {
  return new Promise((resolve, reject) => {
    const out: yauzl.Entry[] = [];
    zip.on('entry', (e: yauzl.Entry) => {
      out.push(e);
      zip.readEntry();
    });
    zip.on('end', () => resolve(out));
    zip.on('error', reject);
    zip.readEntry();
  });
}

function openEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Readable> {
  return new Promise((resolve, reject) => zip.openReadStream(entry, (err, stream) => (err ? reject(err) : resolve(stream!))));
}

/** Streams the arrays of the .npz at `file` into `stage`. */
export async function ingestNpz(file: string, stage: DatasetStage, limits: NpyLimits, where = 'body'): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(file);
  } catch (err) {
    throw new SpecError(where, `the body is not a valid .npz (zip) archive: ${(err as Error).message}`, 'DATASET_INVALID');
  }
  try {
    let list: yauzl.Entry[];
    try {
      list = await entries(zip);
    } catch (err) {
      throw new SpecError(where, `the .npz archive is damaged: ${(err as Error).message}`, 'DATASET_INVALID');
    }
    const arrays = list.filter((e) => !e.fileName.endsWith('/'));
    const unknown = arrays.filter((e) => !ENTRY_RE.test(e.fileName) && e.fileName !== WEIGHT_ENTRY).map((e) => e.fileName.replace(/\.npy$/, ''));
    if (unknown.length) {
      throw new SpecError(where, `the .npz holds ${unknown.map((n) => `"${n}"`).join(', ')}; name its arrays x and y, or x_<input> and y_<output>, and optionally sample_weight (np.savez(f, x=x, y=y))`, 'DATASET_INVALID');
    }
    // x first, then y, each in archive order, then sample_weight.
    const sideOf = (e: yauzl.Entry) => (e.fileName === WEIGHT_ENTRY ? 'w' : ENTRY_RE.exec(e.fileName)![1]!);
    arrays.sort((a, b) => sideOf(a).localeCompare(sideOf(b)));
    for (const entry of arrays) {
      const [, side, name] = entry.fileName === WEIGHT_ENTRY ? [null, 'w', undefined] : ENTRY_RE.exec(entry.fileName)!;
      const label = side === 'w' ? 'sample_weight' : name === undefined ? side! : `${side}_${name}`;
      if (entry.uncompressedSize > limits.bytes + (1 << 20)) {
        throw new ApiError('PAYLOAD_TOO_LARGE', `${label} holds ${entry.uncompressedSize} bytes, over the limit of ${limits.bytes} (MAX_UPLOAD_BYTES)`, label);
      }
      let stream: Readable;
      try {
        stream = await openEntry(zip, entry);
      } catch (err) {
        throw new SpecError(label, `cannot read ${entry.fileName} from the .npz: ${(err as Error).message}`, 'DATASET_INVALID');
      }
      try {
        await ingestNpy(stream, stage, side as 'x' | 'y' | 'w', name ?? null, limits, label);
      } catch (err) {
        stream.destroy();
        // Errors of the archive itself (inflate, sizes); file-system errors (with a syscall) stay 5xx.
        if (err instanceof Error && !(err instanceof SpecError) && !(err instanceof ApiError) && !('syscall' in err)) {
          throw new SpecError(label, `${entry.fileName} in the .npz is damaged: ${err.message}`, 'DATASET_INVALID');
        }
        throw err;
      }
    }
  } finally {
    zip.close();
  }
}
