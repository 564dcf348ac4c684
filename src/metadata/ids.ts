import { randomBytes } from 'node:crypto';

/**
 * Ids that sort by creation time as strings (so lists page newest-first by id)
 * and are unguessable: a prefix, the time in base 36, 8 random hex characters.
 */
export function newId(prefix: 'ds' | 'mdl' | 'job' | 'wkr'): string {
  return `${prefix}_${Date.now().toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`;
}

/** Ids we hand out are [a-z]+_[0-9a-z]+: anything else cannot exist, and never reaches a Redis key or a path. */
export function isWellFormedId(id: string): boolean {
  // Built-in datasets have fixed ids (builtin-iris, ...).
  return /^[a-z]{2,4}_[0-9a-z]{9,40}$/.test(id) || /^builtin-[a-z_]{1,32}$/.test(id);
}
