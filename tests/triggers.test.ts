/** Trigger specs put the pixels each attack writes (the NAD authors' grid, Blended, SIG) where they belong. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTrigger } from '../src/verify/triggers.js';
import { FIXTURES } from './helpers/fixtures.js';

const shape = { c: 3, h: 32, w: 32 };
const px = (img: Float32Array, y: number, x: number, k = 0) => Math.round(img[(y * 32 + x) * 3 + k]! * 255);
const grey = () => new Float32Array(32 * 32 * 3).fill(0.5);

describe('triggers', () => {
  it('grid: the NAD code\'s 3x3 pattern in the bottom-right corner, on every channel', async () => {
    const t = await parseTrigger('grid', shape);
    const out = t(grey(), 32, 32, 3);
    const expected = [[0, 0, 255], [0, 255, 0], [255, 0, 255]];
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) for (let k = 0; k < 3; k++) expect(px(out, 29 + r, 29 + c, k)).toBe(expected[r]![c]);
    expect(px(out, 28, 28)).toBe(128);
    // As the code writes it: img[31][31]=255, img[31][30]=0, img[30][30]=255, img[29][29]=0.
    expect([px(out, 31, 31), px(out, 31, 30), px(out, 30, 30), px(out, 29, 29)]).toEqual([255, 0, 255, 0]);
  });

  it('square:3: a white square one pixel in from the corner', async () => {
    const out = (await parseTrigger('square:3', shape))(grey(), 32, 32, 3);
    expect([px(out, 28, 28), px(out, 30, 30), px(out, 31, 31), px(out, 27, 27)]).toEqual([255, 255, 128, 128]);
  });

  it('sig:20:6: delta * sin(2 pi j f / W) along the columns, clipped', async () => {
    const out = (await parseTrigger('sig:20:6', shape))(grey(), 32, 32, 3);
    for (const j of [0, 1, 5, 17]) expect(out[(3 * 32 + j) * 3]).toBeCloseTo(0.5 + (20 * Math.sin((2 * Math.PI * j * 6) / 32)) / 255, 6);
  });

  it('blend with a pattern image and with seeded noise', async () => {
    const img = (await parseTrigger(`blend:${join(FIXTURES, 'images', 'colour0.png')}:0.2`, shape))(grey(), 32, 32, 3);
    expect(img[0]).not.toBeCloseTo(0.5, 3);
    const a = (await parseTrigger('blend:random:7:0.2', shape))(grey(), 32, 32, 3);
    const b = (await parseTrigger('blend:random:7:0.2', shape))(grey(), 32, 32, 3);
    expect(Array.from(a)).toEqual(Array.from(b));
    for (const v of a) expect(v).toBeGreaterThanOrEqual(0.4 - 1e-6);
  });

  it('bad specs are refused with the flag named', async () => {
    await expect(parseTrigger('square:x', shape)).rejects.toThrow(/--trigger square:x: size must be a number/);
    await expect(parseTrigger('patch:nope.png:1:1', shape)).rejects.toThrow(/cannot read patch image/);
  });
  it('writing into a given buffer gives the same image as a fresh array, and leaves the input alone', async () => {
    const specs = ['grid', 'square:3', 'sig:20:6', 'blend:random:7:0.2', `patch:${join(FIXTURES, 'images', 'colour0.png')}:0:0`];
    const src = Float32Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37 % 256) / 255);
    for (const spec of specs) {
      // A patch as large as the image fits only at 0:0.
      const t = await parseTrigger(spec, shape);
      const fresh = t(src.slice(), 32, 32, 3);
      const buf = new Float32Array(src.length * 3).fill(-1);
      const view = buf.subarray(src.length, 2 * src.length);
      const input = src.slice();
      const got = t(input, 32, 32, 3, view);
      expect(got, spec).toBe(view);
      expect(Array.from(view), spec).toEqual(Array.from(fresh));
      expect(Array.from(input), spec).toEqual(Array.from(src));
      expect(buf[0], spec).toBe(-1);
      expect(buf[buf.length - 1], spec).toBe(-1);
    }
  });
});
