import fs from 'node:fs/promises';
import { paths } from './paths.ts';

export async function removeModelFiles(dataDir: string, tenant: string, modelId: string): Promise<void> {
  await fs.rm(paths.model(dataDir, tenant, modelId), { recursive: true, force: true });
}
