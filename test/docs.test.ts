// The README documents every error code and every configuration variable the code has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ERROR_CODES } from '../src/errors.ts';
import { CONFIG_TABLE, loadConfig } from '../src/config.ts';

const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');

test('README lists every error code', () => {
  for (const code of Object.keys(ERROR_CODES)) assert.ok(readme.includes(`\`${code}\``), code);
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
