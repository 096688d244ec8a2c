/** The forward-conv gradients (used on wasm) against PyTorch's conv2d gradients. */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '../src/tf.js';
import { conv2dTrainable } from '../src/backend/conv2d-gradients.js';
import { depthwiseConv2dTrainable } from '../src/backend/depthwise-conv2d-gradients.js';
import { wasm, readJson, REFERENCE, maxAbsDiff, maxAbs } from './helpers/fixtures.js';

interface ConvCase {
  stride: number; pad: number; dilation: number; groups: number;
  x_shape: number[]; w_shape: number[]; y_shape: number[];
  x: number[]; w: number[]; y: number[]; dy: number[]; dx: number[]; dw: number[];
}

beforeAll(wasm);

describe('conv2d gradients built from forward convolutions', () => {
  const cases = readJson<ConvCase[]>(join(REFERENCE, 'conv_grads.json'));
  for (const c of cases) {
    it(`stride ${c.stride}, pad ${c.pad}, dilation ${c.dilation}, groups ${c.groups}, k ${c.w_shape[2]}`, () => {
      expect(tf.getBackend()).toBe('wasm');
      const res = tf.tidy(() => {
        const x = tf.transpose(tf.tensor(c.x, c.x_shape), [0, 2, 3, 1]) as tf.Tensor4D;
        const w = tf.transpose(tf.tensor(c.w, c.w_shape), [2, 3, 1, 0]) as tf.Tensor4D;
        const dy = tf.transpose(tf.tensor(c.dy, c.y_shape), [0, 2, 3, 1]) as tf.Tensor4D;
        const p = { strides: [c.stride, c.stride] as [number, number], pads: [c.pad, c.pad, c.pad, c.pad] as [number, number, number, number], dilations: [c.dilation, c.dilation] as [number, number] };
        // Grouped: one conv per group, as the Conv converter lowers it.
        const conv = (xi: tf.Tensor, wi: tf.Tensor) => {
          if (c.groups === 1) return conv2dTrainable(xi as tf.Tensor4D, wi as tf.Tensor4D, p);
          const xs = tf.split(xi, c.groups, 3), ws = tf.split(wi, c.groups, 3);
          return tf.concat(xs.map((xg, g) => conv2dTrainable(xg as tf.Tensor4D, ws[g] as tf.Tensor4D, p)), 3);
        };
        const f = (xi: tf.Tensor, wi: tf.Tensor) => tf.sum(tf.mul(conv(xi, wi), dy));
        const y = conv(x, w);
        const [gx, gw] = tf.grads(f)([x, w]);
        return {
          y: Array.from(tf.transpose(y, [0, 3, 1, 2]).dataSync()),
          dx: Array.from(tf.transpose(gx!, [0, 3, 1, 2]).dataSync()),
          dw: Array.from(tf.transpose(gw!, [3, 2, 0, 1]).dataSync()),
        };
      });
      expect(maxAbsDiff(res.y, c.y)).toBeLessThan(1e-4 * maxAbs(c.y));
      expect(maxAbsDiff(res.dx, c.dx)).toBeLessThan(1e-4 * maxAbs(c.dx));
      expect(maxAbsDiff(res.dw, c.dw)).toBeLessThan(1e-4 * maxAbs(c.dw));
    });
  }
});

describe('depthwise conv2d gradients built from forward ops (the tfjs engine on wasm)', () => {
  const cases = readJson<ConvCase[]>(join(REFERENCE, 'depthwise_conv_grads.json'));
  for (const c of cases) {
    const m = c.w_shape[0]! / c.groups;
    it(`${c.groups} channels x ${m}, stride ${c.stride}, pad ${c.pad}, dilation ${c.dilation}, k ${c.w_shape[2]}: against PyTorch`, () => {
      expect(tf.getBackend()).toBe('wasm');
      const res = tf.tidy(() => {
        const x = tf.transpose(tf.tensor(c.x, c.x_shape), [0, 2, 3, 1]) as tf.Tensor4D;
        // [C*m, 1, KH, KW] -> [KH, KW, C, m], the layout the Conv converter hands over.
        const k = c.w_shape[2]!;
        const w = tf.transpose(tf.tensor(c.w, c.w_shape), [2, 3, 1, 0]).reshape([k, k, c.groups, m]) as tf.Tensor4D;
        const dy = tf.transpose(tf.tensor(c.dy, c.y_shape), [0, 2, 3, 1]) as tf.Tensor4D;
        const p = { strides: [c.stride, c.stride] as [number, number], pads: [c.pad, c.pad, c.pad, c.pad] as [number, number, number, number], dilations: [c.dilation, c.dilation] as [number, number] };
        const f = (xi: tf.Tensor, wi: tf.Tensor) => tf.sum(tf.mul(depthwiseConv2dTrainable(xi as tf.Tensor4D, wi as tf.Tensor4D, p), dy));
        const y = depthwiseConv2dTrainable(x, w, p);
        const [gx, gw] = tf.grads(f)([x, w]);
        return {
          y: Array.from(tf.transpose(y, [0, 3, 1, 2]).dataSync()),
          dx: Array.from(tf.transpose(gx!, [0, 3, 1, 2]).dataSync()),
          dw: Array.from(tf.transpose(gw!.reshape([k, k, 1, c.groups * m]), [3, 2, 0, 1]).dataSync()),
        };
      });
      expect(maxAbsDiff(res.y, c.y)).toBeLessThan(1e-4 * maxAbs(c.y));
      expect(maxAbsDiff(res.dx, c.dx)).toBeLessThan(1e-4 * maxAbs(c.dx));
      expect(maxAbsDiff(res.dw, c.dw)).toBeLessThan(1e-4 * maxAbs(c.dw));
    });
  }
});
