/**
 * Trigger specs for measuring ASR (BadNets' grid as the NAD authors' code writes it, Blended, SIG), applied to one NHWC image in [0, 1]:
 * grid | square:<size> | blend:<pattern.png|random:<seed>>:<alpha> | sig:<delta>:<f> | patch:<image.png>:<x>:<y>
 */
import { BadInputError } from '../errors.js';
import { decodeImage } from '../data/image-folder.js';
import { Rng } from '../data/random.js';

/**
 * Applies the trigger to one NHWC image. With `out` (h * w * c floats) the result is written there and returned,
 * so that an evaluation of 9,000 triggered images does not allocate 9,000 arrays; without it, a new array.
 */
export type Trigger = (img: Float32Array, h: number, w: number, c: number, out?: Float32Array) => Float32Array;

/** `img` copied into `out` (or into a new array): the start of every trigger. */
function copyOf(img: Float32Array, out?: Float32Array): Float32Array {
  if (!out) return img.slice();
  out.set(img);
  return out;
}

const GRID = [[0, 0, 255], [0, 255, 0], [255, 0, 255]];

function num(s: string | undefined, spec: string, what: string): number {
  const v = Number(s);
  if (s === undefined || s === '' || !Number.isFinite(v)) throw new BadInputError(`--trigger ${spec}: ${what} must be a number`);
  return v;
}

export async function parseTrigger(spec: string, shape: { c: number; h: number; w: number }): Promise<Trigger> {
  const [kind, ...args] = spec.split(':');
  switch (kind) {
    case 'grid':
      return (img, h, w, c, buf) => {
        const out = copyOf(img, buf);
        for (let r = 0; r < 3; r++) for (let q = 0; q < 3; q++) for (let k = 0; k < c; k++) out[((h - 3 + r) * w + (w - 3 + q)) * c + k] = GRID[r]![q]! / 255;
        return out;
      };
    case 'square': {
      const s = num(args[0], spec, 'size');
      if (s < 1 || s > shape.h - 1) throw new BadInputError(`--trigger ${spec}: size out of range`);
      return (img, h, w, c, buf) => {
        const out = copyOf(img, buf);
        for (let y = h - 1 - s; y < h - 1; y++) for (let x = w - 1 - s; x < w - 1; x++) for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = 1;
        return out;
      };
    }
    case 'blend': {
      const alpha = num(args[args.length - 1], spec, 'alpha');
      const src = args.slice(0, -1).join(':');
      let pattern: Float32Array;
      const size = shape.h * shape.w * shape.c;
      if (src.startsWith('random')) {
        const rng = new Rng(num(src.split(':')[1] ?? '0', spec, 'seed'));
        pattern = Float32Array.from({ length: size }, () => Math.floor(rng.next() * 256) / 255);
      } else {
        const img = await decodeImage(src, shape.c).catch(() => {
          throw new BadInputError(`--trigger ${spec}: cannot read pattern image '${src}'`);
        });
        if (img.h !== shape.h || img.w !== shape.w) throw new BadInputError(`--trigger ${spec}: pattern is ${img.w}x${img.h}, images are ${shape.w}x${shape.h}`);
        pattern = Float32Array.from(img.data, (v) => v / 255);
      }
      return (img, _h, _w, _c, buf) => {
        const out = buf ?? new Float32Array(img.length);
        for (let i = 0; i < img.length; i++) out[i] = (1 - alpha) * img[i]! + alpha * pattern[i]!;
        return out;
      };
    }
    case 'sig': {
      const delta = num(args[0], spec, 'delta'), f = num(args[1], spec, 'f');
      // The signal depends on the column only: computed once per image width.
      let adds: Float64Array | undefined;
      return (img, h, w, c, buf) => {
        const out = copyOf(img, buf);
        if (adds?.length !== w) adds = Float64Array.from({ length: w }, (_, x) => (delta * Math.sin((2 * Math.PI * x * f) / w)) / 255);
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
          const add = adds[x]!;
          for (let k = 0; k < c; k++) {
            const i = (y * w + x) * c + k;
            out[i] = Math.min(1, Math.max(0, out[i]! + add));
          }
        }
        return out;
      };
    }
    case 'patch': {
      if (args.length < 3) throw new BadInputError(`--trigger ${spec}: use patch:<image.png>:<x>:<y>`);
      const y0 = num(args[args.length - 1], spec, 'y'), x0 = num(args[args.length - 2], spec, 'x');
      const file = args.slice(0, -2).join(':');
      const img = await decodeImage(file, shape.c).catch(() => {
        throw new BadInputError(`--trigger ${spec}: cannot read patch image '${file}'`);
      });
      if (x0 < 0 || y0 < 0 || x0 + img.w > shape.w || y0 + img.h > shape.h) throw new BadInputError(`--trigger ${spec}: patch does not fit inside the image`);
      return (src, _h, w, c, buf) => {
        const out = copyOf(src, buf);
        for (let y = 0; y < img.h; y++) for (let x = 0; x < img.w; x++) for (let k = 0; k < c; k++) out[((y0 + y) * w + x0 + x) * c + k] = img.data[(y * img.w + x) * c + k]! / 255;
        return out;
      };
    }
    default:
      throw new BadInputError(`--trigger ${spec}: unknown trigger (use grid, square:<size>, blend:<pattern.png|random:<seed>>:<alpha>, sig:<delta>:<f>, patch:<image.png>:<x>:<y>)`);
  }
}

/** --trigger / --poisoned need --target, and --target must be one of the model's classes. */
export function checkAttackOptions(o: { trigger?: string; poisoned?: string; target?: number }, numClasses?: number): void {
  if ((o.trigger || o.poisoned) && o.target === undefined) throw new BadInputError('--trigger/--poisoned need --target <label>');
  if (numClasses !== undefined && o.target !== undefined && !(Number.isInteger(o.target) && o.target >= 0 && o.target < numClasses)) {
    throw new BadInputError(`--target: ${o.target} is not a class of this model (0..${numClasses - 1})`);
  }
}
