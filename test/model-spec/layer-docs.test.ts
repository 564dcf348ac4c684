// docs/layers.md is generated from the registry (src/model-spec/layer-docs.ts) and every layer class
// TensorFlow.js registers is reachable from the native spec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { layersDoc } from '../../src/model-spec/layer-docs.ts';
import { findLayerDef, RNN_CELL_TYPES } from '../../src/model-spec/layer-registry.ts';
import { buildModel } from '../../src/model-spec/build-model.ts';
import { initBackend } from '../../src/engine/backend.ts';

await initBackend('cpu');

test('docs/layers.md is what layer-docs.ts generates (regenerate: node --import tsx src/model-spec/layer-docs.ts > docs/layers.md)', () => {
  const doc = fs.readFileSync(new URL('../../docs/layers.md', import.meta.url), 'utf8');
  assert.equal(doc, layersDoc());
});

test('every layer class tfjs registers has a registry entry (cells through RNN; containers and inputs by the model forms)', () => {
  const map = tf.serialization.SerializationMap.getMap().classNameMap as Record<string, [{ prototype: unknown }, unknown]>;
  const handledElsewhere = new Set(['InputLayer', 'Sequential', 'Model', 'Functional', 'StackedRNNCells', 'ConvLSTM2DCell', 'ResetAfterGRUCell', ...RNN_CELL_TYPES]);
  const missing = Object.entries(map)
    .filter(([, [cls]]) => cls.prototype instanceof tf.layers.Layer)
    .map(([name]) => name)
    .filter((name) => !handledElsewhere.has(name) && !findLayerDef(name));
  assert.deepEqual(missing, []);
});

test('layers added for tfjs coverage build with Keras parameter counts', () => {
  const count = (layers: unknown[]) => {
    const m = buildModel({ type: 'sequential', layers });
    const n = m.countParams();
    m.dispose();
    return n;
  };
  assert.equal(count([{ type: 'Conv3D', filters: 2, kernel_size: 3, input_shape: [5, 5, 5, 1] }]), 27 * 2 + 2);
  assert.equal(count([{ type: 'MaxPooling3D', input_shape: [4, 4, 4, 1] }, { type: 'AveragePooling3D', pool_size: 1 }]), 0);
  assert.equal(count([{ type: 'RNN', cell: { type: 'LSTMCell', units: 3 }, input_shape: [4, 2] }]), 4 * (3 * (2 + 3) + 3));
  assert.equal(count([{ type: 'RNN', cell: [{ type: 'SimpleRNNCell', units: 3 }, { type: 'GRUCell', units: 2 }], input_shape: [4, 2] }]), (3 * 5 + 3) + 3 * (2 * (3 + 2) + 2 * 2));
  assert.equal(count([{ type: 'ConvLSTM2D', filters: 2, kernel_size: 3, input_shape: [3, 6, 6, 1] }]), 4 * (9 * 1 * 2 + 9 * 2 * 2 + 2));
  assert.equal(count([{ type: 'CategoryEncoding', num_tokens: 5, output_mode: 'multi_hot', input_shape: [3] }]), 0);
  assert.equal(count([{ type: 'Resizing', height: 4, width: 4, input_shape: [8, 8, 3] }, { type: 'CenterCrop', height: 2, width: 2 }]), 0);
  assert.equal(count([{ type: 'Normalization', mean: [1, 2], variance: [4, 4], input_shape: [2] }]), 0);
});
