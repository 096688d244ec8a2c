/** Data loading: decoded pixels equal PIL's, formats, seeded subsets, clear errors. */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, copyFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../src/data/image-folder.js';
import { decodeJpegRgb, jpegFrame } from '../src/data/jpeg-wasm.js';
import { loadDataset } from '../src/data/load-dataset.js';
import { subsetIndices } from '../src/data/random.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';

const IMAGES = join(FIXTURES, 'images');
const pil = readJson<Record<string, { rgb: number[]; l: number[] }>>(join(IMAGES, 'pil-pixels.json'));
const shape1 = { c: 1, h: 32, w: 32 };

describe('image decoding matches PIL within ±1', () => {
  for (const name of Object.keys(pil)) {
    it(name, async () => {
      const rgb = await decodeImage(join(IMAGES, name), 3);
      const l = await decodeImage(join(IMAGES, name), 1);
      const maxDiff = (a: Uint8Array, b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
      expect(rgb.data.length).toBe(pil[name]!.rgb.length);
      expect(maxDiff(rgb.data, pil[name]!.rgb)).toBeLessThanOrEqual(1);
      expect(maxDiff(l.data, pil[name]!.l)).toBeLessThanOrEqual(1);
    });
  }
});

describe('JPEGs of the model\'s size go to the wasm libjpeg-turbo decoder', () => {
  for (const name of Object.keys(pil).filter((n) => n.endsWith('.jpg'))) {
    it(`${name}: taken by it, the same bytes as sharp, PIL within ±1`, async () => {
      const bytes = readFileSync(join(IMAGES, name));
      const wasm = await decodeJpegRgb(bytes, 32, 32);
      expect(wasm).toBeDefined();
      const viaSharp = await decodeImage(join(IMAGES, name), 3);
      expect(Buffer.from(wasm!).equals(Buffer.from(viaSharp.data))).toBe(true);
      const loaded = await decodeImage(join(IMAGES, name), 3, { h: 32, w: 32 });
      expect(loaded.data.reduce((m, v, i) => Math.max(m, Math.abs(v - pil[name]!.rgb[i]!)), 0)).toBeLessThanOrEqual(1);
    });
  }

  it('leaves to sharp a file of another size, a cut file and a non-JPEG; sharp then names the fault', async () => {
    const bytes = readFileSync(join(IMAGES, 'colour0.jpg'));
    expect(jpegFrame(bytes)).toEqual({ h: 32, w: 32, components: 3, precision: 8 });
    expect(await decodeJpegRgb(bytes, 28, 28)).toBeUndefined();
    expect(await decodeJpegRgb(bytes.subarray(0, bytes.length - 2), 32, 32)).toBeUndefined();
    expect(await decodeJpegRgb(readFileSync(join(IMAGES, 'colour0.png')), 32, 32)).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'nad-jpeg-'));
    writeFileSync(join(dir, 'cut.jpg'), bytes.subarray(0, bytes.length - 2));
    await expect(decodeImage(join(dir, 'cut.jpg'), 3, { h: 32, w: 32 })).rejects.toThrow(/cut\.jpg: cannot decode image \(.*premature end/);
    // A corrupt scan that libjpeg survives: the decoder is used again afterwards with the same result.
    const garbled = Uint8Array.from(bytes);
    garbled.fill(0xff, 300, 340);
    await decodeJpegRgb(garbled, 32, 32);
    expect(Buffer.from((await decodeJpegRgb(bytes, 32, 32))!).equals(Buffer.from((await decodeImage(join(IMAGES, 'colour0.jpg'), 3)).data))).toBe(true);
  });
});

describe('dataset formats', () => {
  it('ImageFolder, .npz and IDX give the same images and labels', async () => {
    const folder = await loadDataset({ path: join(FIXTURES, 'data', 'fmnist-clean'), shape: shape1, numClasses: 10 });
    const npz = await loadDataset({ path: join(FIXTURES, 'data', 'fmnist-train.npz'), shape: shape1, numClasses: 10 });
    expect(folder.n).toBe(500);
    // The folder is sorted by class, then file name (= index in the npz).
    const names = folder.classes!;
    expect(names[0]).toBe('0-tshirt');
    let checked = 0;
    for (let i = 0; i < folder.n; i += 37) {
      const lab = folder.labels[i]!;
      // Find the npz row with the same pixels.
      const row = folder.x.subarray(i * 1024, (i + 1) * 1024);
      for (let j = 0; j < 500; j++) {
        if (npz.labels[j] !== lab) continue;
        const other = npz.x.subarray(j * 1024, (j + 1) * 1024);
        if (other.every((v, k) => v === row[k])) {
          checked++;
          break;
        }
      }
    }
    expect(checked).toBe(Math.ceil(500 / 37));
  });

  it('IDX files (gzipped, MNIST layout)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nad-idx-'));
    const { gzipSync } = await import('node:zlib');
    const n = 3, img = new Uint8Array(16 + n * 32 * 32), lab = new Uint8Array(8 + n);
    new DataView(img.buffer).setUint32(0, 0x0803); new DataView(img.buffer).setUint32(4, n);
    new DataView(img.buffer).setUint32(8, 32); new DataView(img.buffer).setUint32(12, 32);
    new DataView(lab.buffer).setUint32(0, 0x0801); new DataView(lab.buffer).setUint32(4, n);
    img[16] = 255; lab.set([7, 1, 2], 8);
    writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(img));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(lab));
    const d = await loadDataset({ path: join(dir, 't10k-images-idx3-ubyte.gz'), shape: shape1, numClasses: 10 });
    expect(d.n).toBe(3);
    expect(Array.from(d.labels)).toEqual([7, 1, 2]);
    expect(d.x[0]).toBe(1);
  });

  it('a seeded subset is the same for the same seed and differs for another', () => {
    const a = subsetIndices(1000, 0.05, 3), b = subsetIndices(1000, 0.05, 3), c = subsetIndices(1000, 0.05, 4);
    expect(a.length).toBe(50);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });
});

describe('bad data is refused with the file named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nad-data-'));
  it('empty class folder', async () => {
    mkdirSync(join(dir, 'empty', 'a'), { recursive: true });
    await expect(loadDataset({ path: join(dir, 'empty'), shape: shape1, numClasses: 10 })).rejects.toThrow(/empty class folder/);
  });
  it('wrong image size', async () => {
    mkdirSync(join(dir, 'size', 'a'), { recursive: true });
    copyFileSync(join(IMAGES, 'gray.png'), join(dir, 'size', 'a', 'x.png'));
    await expect(loadDataset({ path: join(dir, 'size'), shape: { c: 1, h: 28, w: 28 }, numClasses: 10 })).rejects.toThrow(/x\.png: image is 32x32, the model takes 28x28/);
  });
  it('corrupt image', async () => {
    mkdirSync(join(dir, 'corrupt', 'a'), { recursive: true });
    writeFileSync(join(dir, 'corrupt', 'a', 'bad.jpg'), Buffer.from('not a jpeg at all'));
    await expect(loadDataset({ path: join(dir, 'corrupt'), shape: shape1, numClasses: 10 })).rejects.toThrow(/bad\.jpg: cannot decode image/);
  });
  it('symlink leaving the data folder', async () => {
    mkdirSync(join(dir, 'link', 'a'), { recursive: true });
    symlinkSync(join(IMAGES, 'gray.png'), join(dir, 'link', 'a', 'x.png'));
    await expect(loadDataset({ path: join(dir, 'link'), shape: shape1, numClasses: 10 })).rejects.toThrow(/symlink leaves the data folder/);
  });
  it('label out of range', async () => {
    await expect(loadDataset({ path: join(FIXTURES, 'data', 'fmnist-train.npz'), shape: shape1, numClasses: 5 })).rejects.toThrow(/label \d+ of image \d+ is out of range for a model with 5 classes/);
  });
});
