// The README documents every error code and every configuration variable the code has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ERROR_CODES } from '../src/errors.ts';
import { CONFIG_TABLE, loadConfig } from '../src/config.ts';
import { FUNCTIONS } from '../src/expressions/functions.ts';
import { signature } from '../src/expressions/evaluate.ts';
import { EXPRESSION_LIMITS } from '../src/expressions/parser.ts';

const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');

test('README lists every error code', () => {
  for (const code of Object.keys(ERROR_CODES)) assert.ok(readme.includes(`\`${code}\``), code);
});

test('docs/expressions.md lists every expression function with its signature, and the limits', () => {
  const doc = fs.readFileSync(new URL('../docs/expressions.md', import.meta.url), 'utf8');
  for (const def of FUNCTIONS) {
    assert.ok(doc.includes(`| \`${signature(def)}\` |`), signature(def));
    for (const alias of def.aliases ?? []) assert.ok(doc.includes(`\`${alias}\``), alias);
  }
  assert.ok(doc.includes(`${EXPRESSION_LIMITS.maxLength} characters`));
  assert.ok(doc.includes(`${EXPRESSION_LIMITS.maxDepth} levels`));
  assert.ok(doc.includes(`| ${EXPRESSION_LIMITS.maxNodes} |`));
});

test('README lists every configuration variable, and each is read by loadConfig', () => {
  const src = fs.readFileSync(new URL('../src/config.ts', import.meta.url), 'utf8');
  for (const { env } of CONFIG_TABLE) {
    assert.ok(readme.includes(`\`${env}\``), env);
    assert.ok(src.includes(`'${env}'`) || src.includes(`env.${env}`), `${env} is read`);
  }
});

test('config refuses an open server on a non-loopback address and bad numbers', () => {
  assert.throws(() => loadConfig({ HOST: '0.0.0.0' }), /API_KEYS/);
  assert.equal(loadConfig({ HOST: '0.0.0.0', API_KEYS: 't:k' }).host, '0.0.0.0');
  assert.throws(() => loadConfig({ PORT: 'eighty' }), /PORT/);
  assert.throws(() => loadConfig({ API_KEYS: 'nocolon' }), /tenant:key/);
  assert.equal(loadConfig({ API_KEYS: 'a:k1,b:k2' }).apiKeys.get('k2'), 'b');
});
