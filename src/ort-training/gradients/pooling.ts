/**
 * GlobalAveragePool spreads dy / (H*W) over the window; MaxPool routes dy to the arg-max positions, which
 * the forward MaxPool reports as its second (Indices) output, by a scatter-add (overlapping windows can
 * pick the same input twice).
 */
import { UnsupportedForTraining, type GradientContext } from './gradient-types.js';

export function globalAveragePoolGradient(ctx: GradientContext): (string | undefined)[] {
  const { b } = ctx;
  const x = ctx.node.inputs[0]!;
  const s = ctx.shape(x);
  if (s.length !== 4) throw new UnsupportedForTraining(`${ctx.where}: GlobalAveragePool on rank ${s.length}`);
  const scaled = b.one('Mul', [ctx.dy[0]!, b.scalar(1 / (s[2]! * s[3]!))]);
  return [b.one('Expand', [scaled, b.one('Shape', [x])])];
}

/** `indices`: the forward MaxPool's Indices output (flat positions in the whole input tensor). */
export function maxPoolGradient(ctx: GradientContext, indices: string): (string | undefined)[] {
  const { b } = ctx;
  const x = ctx.node.inputs[0]!;
  const shapeX = b.one('Shape', [x]);
  const zeros = b.one('ConstantOfShape', [b.one('Reshape', [b.one('Size', [x]), b.ints([1])])], {});
  const flatIdx = b.one('Reshape', [indices, b.ints([-1])]);
  const flatDy = b.one('Reshape', [ctx.dy[0]!, b.ints([-1])]);
  const scattered = b.one('ScatterElements', [zeros, flatIdx, flatDy], { axis: 0, reduction: 'add' });
  return [b.one('Reshape', [scattered, shapeX])];
}

/**
 * AveragePool: dy divided by each window's element count, spread back over the window by a depthwise
 * ConvTranspose with a kernel of ones (overlapping windows add up, as they should).
 */
export function averagePoolGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const xs = ctx.shape(x), ys = ctx.shape(node.outputs[0]!);
  if (xs.length !== 4) throw new UnsupportedForTraining(`${ctx.where}: AveragePool on rank ${xs.length}`);
  if (node.attrs.string('auto_pad', 'NOTSET') !== 'NOTSET') throw new UnsupportedForTraining(`${ctx.where}: auto_pad`);
  const kernel = node.attrs.ints('kernel_shape', [1, 1])!;
  const strides = node.attrs.ints('strides', [1, 1])!;
  const pads = node.attrs.ints('pads', [0, 0, 0, 0])!;
  const [c, h, w] = xs.slice(1) as [number, number, number];
  const [ho, wo] = ys.slice(2) as [number, number];
  for (let i = 0; i < 2; i++) {
    const floorOut = Math.floor(([h, w][i]! + pads[i]! + pads[i + 2]! - kernel[i]!) / strides[i]!) + 1;
    if (floorOut !== [ho, wo][i]) throw new UnsupportedForTraining(`${ctx.where}: AveragePool with ceil_mode overhang`);
  }
  const includePad = node.attrs.int('count_include_pad', 0) === 1;
  let divisor: string;
  if (includePad || pads.every((p) => p === 0)) {
    divisor = b.scalar(kernel[0]! * kernel[1]!);
  } else {
    const counts: number[] = [];
    for (let y = 0; y < ho; y++) {
      for (let z = 0; z < wo; z++) {
        const y0 = y * strides[0]! - pads[0]!, z0 = z * strides[1]! - pads[1]!;
        const rows = Math.min(h, y0 + kernel[0]!) - Math.max(0, y0), cols = Math.min(w, z0 + kernel[1]!) - Math.max(0, z0);
        counts.push(rows * cols);
      }
    }
    divisor = b.floats(counts, [1, 1, ho, wo]);
  }
  const outputPadding = [0, 1].map((i) => [h, w][i]! - (strides[i]! * ([ho, wo][i]! - 1) + kernel[i]! - pads[i]! - pads[i + 2]!));
  if (outputPadding.some((p, i) => p < 0 || p >= strides[i]!)) throw new UnsupportedForTraining(`${ctx.where}: AveragePool geometry`);
  const ones = b.floats(new Array(c * kernel[0]! * kernel[1]!).fill(1), [c, 1, kernel[0]!, kernel[1]!]);
  const scaled = b.one('Div', [ctx.dy[0]!, divisor]);
  return [b.one('ConvTranspose', [scaled, ones], { group: c, strides, pads, kernel_shape: kernel, output_padding: outputPadding })];
}

/** GlobalMaxPool: dy goes to the positions that hold the maximum. */
export function globalMaxPoolGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const x = node.inputs[0]!;
  const mask = b.one('Equal', [x, node.outputs[0]!]);
  return [b.one('Where', [mask, b.one('Expand', [ctx.dy[0]!, b.one('Shape', [x])]), b.scalar(0)])];
}

