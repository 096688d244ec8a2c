/**
 * Opens --data / --test: an ImageFolder directory, a NumPy .npz (arrays x/y, images/labels or
 * data/targets) or .npy images with a labels .npy beside, or an IDX images file. Checks sizes, channels
 * and labels against the model, and takes a seeded subset (--ratio) before decoding anything heavy.
 */
import { existsSync, statSync } from 'node:fs';
import { BadInputError } from '../errors.js';
import { selectRows, type Dataset } from './dataset.js';
import { labelsFileFor, readIdx } from './idx-files.js';
import { indexImageFolder, loadImageFolder } from './image-folder.js';
import { readNpy, readNpz, type NpyArray } from './numpy-files.js';
import { subsetIndices } from './random.js';

export interface DataRequest {
  path: string;
  /** The model's input: channels, height, width. */
  shape: { c: number; h: number; w: number };
  numClasses: number;
  ratio?: number;
  seed?: number;
  flag?: string; // '--data' or '--test', for messages
}

function fromArrays(source: string, images: NpyArray | { dtype: 'uint8'; shape: number[]; data: Uint8Array }, labels: ArrayLike<number | bigint>, req: DataRequest): Dataset {
  const { c, h, w } = req.shape;
  let s = images.shape;
  if (s.length === 3) s = [...s, 1];
  if (s.length !== 4) throw new BadInputError(`${source}: images must be N x H x W x C or N x C x H x W, got shape (${images.shape.join(', ')})`);
  const n = s[0]!;
  let layout: 'nhwc' | 'nchw';
  if (s[1] === h && s[2] === w && s[3] === c) layout = 'nhwc';
  else if (s[1] === c && s[2] === h && s[3] === w) layout = 'nchw';
  else throw new BadInputError(`${source}: images are (${images.shape.join(', ')}), the model takes ${c} x ${h} x ${w}`);
  if (labels.length !== n) throw new BadInputError(`${source}: ${n} images but ${labels.length} labels`);
  const scale = images.dtype === 'uint8' ? 1 / 255 : 1;
  const src = images.data as ArrayLike<number>;
  const x = new Float32Array(n * h * w * c);
  if (layout === 'nhwc') for (let i = 0; i < x.length; i++) x[i] = Number(src[i]) * scale;
  else {
    const hw = h * w;
    for (let b = 0; b < n; b++) for (let k = 0; k < c; k++) for (let p = 0; p < hw; p++) x[b * hw * c + p * c + k] = Number(src[b * hw * c + k * hw + p]) * scale;
  }
  const lab = Int32Array.from(labels as ArrayLike<number>, (v) => Number(v));
  return { source, x, labels: lab, n, h, w, c };
}

function pick(m: Map<string, NpyArray>, names: string[], path: string, what: string): NpyArray {
  for (const k of names) if (m.has(k)) return m.get(k)!;
  throw new BadInputError(`${path}: no ${what} array (looked for ${names.join(', ')}; found ${[...m.keys()].join(', ')})`);
}

function checkLabels(d: Dataset, numClasses: number): void {
  for (let i = 0; i < d.n; i++) {
    const l = d.labels[i]!;
    if (!Number.isInteger(l) || l < 0 || l >= numClasses) {
      throw new BadInputError(`${d.source}: label ${l} of image ${i} is out of range for a model with ${numClasses} classes`);
    }
  }
}

export async function loadDataset(req: DataRequest): Promise<Dataset> {
  const { path } = req;
  const flag = req.flag ?? '--data';
  if (!existsSync(path)) throw new BadInputError(`${flag} ${path}: no such file or folder`);
  let d: Dataset;
  if (statSync(path).isDirectory()) {
    const index = indexImageFolder(path);
    const all = Int32Array.from({ length: index.files.length }, (_, i) => i);
    const which = req.ratio !== undefined && req.ratio < 1 ? subsetIndices(all.length, req.ratio, req.seed ?? 0) : all;
    if (index.classes.length > req.numClasses) {
      throw new BadInputError(`${path}: ${index.classes.length} class folders, the model has ${req.numClasses} classes`);
    }
    d = await loadImageFolder(index, which, req.shape);
  } else {
    if (path.endsWith('.npz')) {
      const m = readNpz(path);
      d = fromArrays(path, pick(m, ['x', 'images', 'data', 'x_train', 'x_test'], path, 'image'), pick(m, ['y', 'labels', 'targets', 'y_train', 'y_test'], path, 'label').data as ArrayLike<number>, req);
    } else if (path.endsWith('.npy')) {
      const labelsPath = path.replace(/(images|x)(\.npy)$/, (_m, a: string, b: string) => (a === 'images' ? 'labels' : 'y') + b);
      if (labelsPath === path || !existsSync(labelsPath)) throw new BadInputError(`${path}: no labels .npy beside it (name the pair x.npy / y.npy or images.npy / labels.npy)`);
      d = fromArrays(path, readNpy(path), readNpy(labelsPath).data as ArrayLike<number>, req);
    } else if (/idx3-ubyte(\.gz)?$/.test(path)) {
      const img = readIdx(path);
      const lab = readIdx(labelsFileFor(path));
      d = fromArrays(path, { dtype: 'uint8', shape: img.dims, data: img.data }, lab.data, req);
    } else {
      throw new BadInputError(`${flag} ${path}: unknown data format (use an ImageFolder directory, .npz, .npy or an IDX file)`);
    }
    if (req.ratio !== undefined && req.ratio < 1) d = selectRows(d, subsetIndices(d.n, req.ratio, req.seed ?? 0));
  }
  if (d.n === 0) throw new BadInputError(`${flag} ${path}: no images`);
  checkLabels(d, req.numClasses);
  return d;
}
