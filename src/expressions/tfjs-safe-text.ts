/**
 * tfjs rewrites every string in a layer config when it saves (camelCase -> snake_case) and
 * loads (snake_case -> camelCase) a model, which would corrupt expressions ("one_hot" would
 * load as "oneHot"). Text we keep in configs is stored as lowercase hex, which both
 * rewrites leave alone.
 */

export function toSafeText(text: string): string {
  return Buffer.from(text, 'utf8').toString('hex');
}

export function fromSafeText(hex: string): string {
  if (!/^(?:[0-9a-f]{2})*$/.test(hex)) throw new Error('a saved expression is not valid hex text');
  return Buffer.from(hex, 'hex').toString('utf8');
}
