import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Where each blob lives under DATA_DIR. Ids and tenants are validated before they reach a path. */
export const paths = {
  dataset: (dataDir: string, tenant: string, id: string) => path.join(dataDir, 'tenants', tenant, 'datasets', id),
  /** Built-in datasets, shared by every tenant (`key` names one version of one dataset). */
  builtin: (dataDir: string, key: string) => path.join(dataDir, 'builtin', key),
  model: (dataDir: string, tenant: string, id: string) => path.join(dataDir, 'tenants', tenant, 'models', id),
  modelVersion: (dataDir: string, tenant: string, id: string, version: number) =>
    path.join(dataDir, 'tenants', tenant, 'models', id, `v${version}`),
  /** A running job's checkpoints (removed when the job ends). */
  checkpoints: (dataDir: string, tenant: string, jobId: string) => path.join(dataDir, 'tenants', tenant, 'checkpoints', jobId),
  tmp: (dataDir: string) => path.join(dataDir, 'tmp'),
};

/** A fresh path under DATA_DIR/tmp (not created) for a temporary file or directory. */
export async function tmpPath(dataDir: string, base: string): Promise<string> {
  const tmpRoot = paths.tmp(dataDir);
  await fs.mkdir(tmpRoot, { recursive: true });
  return path.join(tmpRoot, `${base}-${randomBytes(6).toString('hex')}`);
}

/**
 * Writes a directory atomically: `fill` writes into a fresh temporary directory,
 * which is renamed into place only when complete, so a crash or a refused write
 * never leaves a half-written blob behind.
 */
export async function writeDirAtomically(dataDir: string, target: string, fill: (dir: string) => Promise<void>): Promise<void> {
  const tmp = await tmpPath(dataDir, path.basename(target));
  await fs.mkdir(tmp);
  try {
    await fill(tmp);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
