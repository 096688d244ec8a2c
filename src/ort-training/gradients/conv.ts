/**
 * Conv gradients as forward ops onnxruntime runs fast. The input gradient is a conv of the output gradient
 * with the flipped filter (stride 1, blocked where MLAS has the kernels) or a ConvTranspose (strided). The
 * filter gradient is the input seen through each kernel tap (blocked one-hot depthwise convs, or one one-hot
 * grouped Conv as an NCHW im2col) times the output gradient, summed over the batch. The bias gradient is a
 * sum over N, H, W. Each route's measurements are in bench/README.md.
 */
import { resolvePads } from '../../import/ops/conv.js';
import { attributeProtos, type GraphBuilder } from '../graph-builder.js';
import { NCHWC_DOMAIN, blockedInput, blockedInputGradientFilter, emitConv, runsBlocked } from '../nchwc-conv.js';
import { UnsupportedForTraining, ints, type GradientContext } from './gradient-types.js';

export interface ConvGeometry {
  group: number;
  strides: number[];
  dilations: number[];
  /** [top, left, bottom, right] */
  pads: number[];
  kernel: number[];
  /** The weight's dims [O, C/group, kh, kw]. */
  filter: number[];
  /** Spatial sizes of the input and output. */
  inHW: number[];
  outHW: number[];
}

export function convGeometry(ctx: Pick<GradientContext, 'node' | 'where' | 'shape'>, x: string, y: string, wDims: number[]): ConvGeometry {
  const n = ctx.node;
  const group = n.attrs.int('group', 1);
  const xs = ctx.shape(x), ys = ctx.shape(y);
  if (xs.length !== 4 || wDims.length !== 4) throw new UnsupportedForTraining(`${ctx.where}: only 2-D convolutions`);
  const strides = ints(n, 'strides', [1, 1]), dilations = ints(n, 'dilations', [1, 1]);
  return {
    group,
    strides,
    dilations,
    // auto_pad resolved to explicit pads as the importer does (the forward node keeps its auto_pad).
    pads: resolvePads(ctx, xs.slice(2), wDims.slice(2), strides, dilations),
    kernel: wDims.slice(2),
    filter: wDims,
    inHW: xs.slice(2),
    outHW: ys.slice(2),
  };
}

export function convInputGradient(b: GraphBuilder, dy: string, w: string, g: ConvGeometry): string {
  const direct = g.group === 1 ? convInputGradientStride1(b, dy, w, g) : undefined;
  if (direct) return direct;
  // ConvTranspose's output size is s*(in-1) + ((k-1)*d+1) - pads + output_padding; output_padding
  // restores the rows a strided conv dropped.
  const outputPadding = [0, 1].map((i) => {
    const full = g.strides[i]! * (g.outHW[i]! - 1) + (g.kernel[i]! - 1) * g.dilations[i]! + 1 - g.pads[i]! - g.pads[i + 2]!;
    return g.inHW[i]! - full;
  });
  if (outputPadding.some((p, i) => p < 0 || p >= Math.max(g.strides[i]!, g.dilations[i]!))) {
    throw new UnsupportedForTraining(`conv geometry ConvTranspose cannot invert (output padding ${outputPadding.join(',')})`);
  }
  return b.one('ConvTranspose', [dy, w], {
    strides: g.strides, dilations: g.dilations, pads: g.pads, kernel_shape: g.kernel, output_padding: outputPadding, group: g.group,
  });
}

/**
 * dW[o, i, kh, kw] = sum over n, y, x of dY[n, o, y, x] * Xpad[n, i, y*s + kh*d, x*s + kw*d], by the conv's
 * kind: dense, depthwise or grouped.
 */
export function convFilterGradient(b: GraphBuilder, x: string, dy: string, g: ConvGeometry, wDims: number[]): string {
  if (g.group === 1) return denseFilterGradient(b, x, dy, g, wDims);
  if (wDims[1] === 1 && wDims[0] === g.group) return depthwiseFilterGradient(b, x, dy, g);
  return groupedFilterGradient(b, x, dy, g, wDims);
}

/**
 * Grouped, any number of groups: per kernel tap one batched MatMul over the groups,
 * [G, Co/G, N*Ho*Wo] x [G, N*Ho*Wo, Ci/G] -> [G, Co/G, Ci/G].
 */
function groupedFilterGradient(b: GraphBuilder, x: string, dy: string, g: ConvGeometry, wDims: number[]): string {
  const [kh, kw] = g.kernel as [number, number];
  const ci = wDims[1]!, co = wDims[0]! / g.group;
  // [N, G*c, Ho, Wo] -> [G, c, N*Ho*Wo] (the batch size is copied at run time).
  const byGroup = (t: string, c: number) =>
    b.one('Reshape', [b.one('Transpose', [b.one('Reshape', [t, b.ints([0, g.group, c, -1])])], { perm: [1, 2, 0, 3] }), b.ints([0, 0, -1])]);
  const dyG = byGroup(dy, co);
  const taps = kernelWindows(b, padSpatial(b, x, g), g).map((win) => {
    const cols = b.one('Transpose', [byGroup(win, ci)], { perm: [0, 2, 1] }); // [G, N*Ho*Wo, Ci/G]
    return b.one('Unsqueeze', [b.one('MatMul', [dyG, cols]), b.ints([3])]); // [G, Co/G, Ci/G, 1]
  });
  const all = taps.length === 1 ? taps[0]! : b.one('Concat', taps, { axis: 3 }); // [G, Co/G, Ci/G, KH*KW]
  return b.one('Reshape', [all, b.ints([wDims[0]!, ci, kh, kw])]);
}

/** One strided window of the padded input per kernel tap, tap-major; `padded` has the spatial axes 2 and 3. */
function kernelWindows(b: GraphBuilder, padded: string, g: ConvGeometry): string[] {
  const [kh, kw] = g.kernel as [number, number];
  const [ho, wo] = g.outHW as [number, number];
  const windows: string[] = [];
  for (let y = 0; y < kh; y++) {
    for (let z = 0; z < kw; z++) {
      const start = [y * g.dilations[0]!, z * g.dilations[1]!];
      const end = [start[0]! + (ho - 1) * g.strides[0]! + 1, start[1]! + (wo - 1) * g.strides[1]! + 1];
      windows.push(b.one('Slice', [padded, b.ints(start), b.ints(end), b.ints([2, 3]), b.ints(g.strides)]));
    }
  }
  return windows;
}

function padSpatial(b: GraphBuilder, x: string, g: ConvGeometry): string {
  return g.pads.some((p) => p !== 0) ? b.one('Pad', [x, b.ints([0, 0, g.pads[0]!, g.pads[1]!, 0, 0, g.pads[2]!, g.pads[3]!])]) : x;
}

/** Depthwise: dW[c, 0, kh, kw] = sum over n, y, x of dY[n, c, y, x] * Xpad[n, c, y*s + kh*d, x*s + kw*d]. */
function depthwiseFilterGradient(b: GraphBuilder, x: string, dy: string, g: ConvGeometry): string {
  const [kh, kw] = g.kernel as [number, number];
  // Each window is [N, C, Ho, Wo]; its product with dy summed over N, Ho, Wo is that tap's weight.
  const taps = kernelWindows(b, padSpatial(b, x, g), g).map((win) => b.reduceSum(b.one('Mul', [dy, win]), [0, 2, 3], true)); // [1, C, 1, 1]
  const all = taps.length === 1 ? taps[0]! : b.one('Concat', taps, { axis: 2 }); // [1, C, KH*KW, 1]
  return b.one('Reshape', [b.one('Transpose', [all], { perm: [1, 0, 2, 3] }), b.ints([0, 1, kh, kw])]);
}

function denseFilterGradient(b: GraphBuilder, x: string, dy: string, g: ConvGeometry, wDims: number[]): string {
  const [co, ci] = wDims as [number, number];
  const [kh, kw] = g.kernel as [number, number];
  const taps = kh * kw;
  const hw = g.outHW[0]! * g.outHW[1]!;
  if (b.nchwcBlock > 0 && ci % b.nchwcBlock === 0 && 2 * hw > co) return blockedDenseFilterGradient(b, x, dy, g, wDims);
  // im2col as one grouped Conv with fixed one-hot kernels: output channel c*taps + t is input channel c seen
  // through kernel tap t, with the layer's own strides, dilations and pads: [N, Ci*KH*KW, Ho, Wo].
  const oneHot = new Array<number>(ci * taps * taps).fill(0);
  for (let c = 0; c < ci; c++) for (let t = 0; t < taps; t++) oneHot[(c * taps + t) * taps + t] = 1;
  const cols4 = b.one('Conv', [x, b.floats(oneHot, [ci * taps, 1, kh, kw])], {
    group: ci, kernel_shape: g.kernel, strides: g.strides, dilations: g.dilations, pads: g.pads,
  });
  const cols = b.one('Reshape', [cols4, b.ints([0, 0, -1])]); // [N, Ci*K, Ho*Wo]
  if (2 * hw <= co) {
    // Few output pixels per image against many output channels (deep layers): per-image products would be
    // larger than the im2col itself (PreAct-ResNet-18's last stage: [64, 4608, 512] from 16 pixels), so the
    // im2col is transposed once and the batch and pixels are one Gemm's inner dimension:
    // [Co, N*Ho*Wo] x [N*Ho*Wo, Ci*K], already in the weight's order. At equal sizes (WRN-16-1's last
    // stage, 64 pixels and 64 channels) the per-image products below were 2-3 % faster per step.
    const dyC = b.one('Reshape', [b.one('Transpose', [b.one('Reshape', [dy, b.ints([0, co, -1])])], { perm: [1, 0, 2] }), b.ints([co, -1])]);
    const colsT = b.one('Reshape', [b.one('Transpose', [cols], { perm: [0, 2, 1] }), b.ints([-1, ci * taps])]);
    return b.one('Reshape', [b.one('MatMul', [dyC, colsT]), b.ints([co, ci, kh, kw])]);
  }
  const dyT = b.one('Transpose', [b.one('Reshape', [dy, b.ints([0, 0, -1])])], { perm: [0, 2, 1] }); // [N, Ho*Wo, Co]
  // One small Gemm per image (onnxruntime spreads the batch over its threads), summed over the batch.
  const perImage = b.one('MatMul', [cols, dyT]); // [N, Ci*K, Co]
  const dwT = b.reduceSum(perImage, [0], false); // [Ci*K, Co]
  return b.one('Reshape', [b.one('Transpose', [dwT], { perm: [1, 0] }), b.ints([co, ci, kh, kw])]);
}

/**
 * The dense filter gradient through MLAS's blocked kernels, where the input's channels fill whole blocks: per
 * kernel tap, a depthwise blocked Conv with a one-hot kernel shifts the blocked input by the tap (the layer's
 * strides, dilations and pads; [N, Ci/B, Ho*Wo, B] as it lies in memory), one MatMul per image against the
 * output gradient [N, 1, Co, Ho*Wo] and a sum over the batch give that tap's [Ci/B, Co, B]. The direct
 * depthwise kernel writes each tap once; the one-hot grouped Conv above runs an NCHW im2col and a tiny Gemm
 * per channel (a [64, 16, 32, 32] input: 3.0 ms for the nine taps against 11.3, bench/README.md).
 */
function blockedDenseFilterGradient(b: GraphBuilder, x: string, dy: string, g: ConvGeometry, wDims: number[]): string {
  const B = b.nchwcBlock;
  const [co, ci] = wDims as [number, number];
  const [kh, kw] = g.kernel as [number, number];
  const taps = kh * kw;
  const hw = g.outHW[0]! * g.outHW[1]!;
  const xb = blockedInput(b, x, b.fresh('Conv_node'));
  const dyRows = b.one('Reshape', [dy, b.ints([0, 1, co, hw])]);
  const unshifted = taps === 1 && g.strides.every((s) => s === 1) && g.pads.every((p) => p === 0);
  const perTap: string[] = [];
  for (let t = 0; t < taps; t++) {
    let shifted = xb;
    if (!unshifted) {
      // The one-hot depthwise filter in MLAS's depthwise layout [Ci/B][1][KH][KW][B]: every lane sees tap t.
      const oneHot = new Array<number>(ci * taps).fill(0);
      for (let block = 0; block < ci / B; block++) for (let lane = 0; lane < B; lane++) oneHot[(block * taps + t) * B + lane] = 1;
      shifted = b.fresh('nchwc_tap');
      b.nodes.push({
        name: b.fresh('Conv_node'), opType: 'Conv', domain: NCHWC_DOMAIN, input: [xb, b.floats(oneHot, [ci, 1, kh, kw])], output: [shifted],
        attribute: attributeProtos({ group: ci, kernel_shape: g.kernel, strides: g.strides, dilations: g.dilations, pads: g.pads }),
      });
    }
    const cols = b.one('Reshape', [shifted, b.ints([0, ci / B, hw, B])]);
    perTap.push(b.reduceSum(b.one('MatMul', [dyRows, cols]), [0], false)); // [Ci/B, Co, B]
  }
  const all = perTap.length === 1 ? perTap[0]! : b.one('Concat', perTap, { axis: 0 }); // [K * Ci/B, Co, B]
  const tapLast = b.one('Transpose', [b.one('Reshape', [all, b.ints([taps, ci / B, co, B])])], { perm: [2, 1, 3, 0] }); // [Co, Ci/B, B, K]
  return b.one('Reshape', [tapLast, b.ints([co, ci, kh, kw])]);
}

/**
 * For stride 1 the input gradient is an ordinary convolution of the output gradient with the kernel
 * flipped and its channel axes swapped, which onnxruntime runs faster than ConvTranspose.
 */
export function convInputGradientStride1(b: GraphBuilder, dy: string, w: string, g: ConvGeometry): string | undefined {
  if (g.strides.some((s) => s !== 1)) return undefined;
  const reach = [0, 1].map((i) => (g.kernel[i]! - 1) * g.dilations[i]!);
  const pads = [reach[0]! - g.pads[0]!, reach[1]! - g.pads[1]!, reach[0]! - g.pads[2]!, reach[1]! - g.pads[3]!];
  if (pads.some((p) => p < 0)) return undefined;
  // The flipped kernel maps the conv's output channels back to its input channels.
  const channels = { in: g.filter[0]!, out: g.filter[1]!, group: 1, kernel: g.kernel };
  const forward = { in: g.filter[1]!, out: g.filter[0]!, group: 1, kernel: g.kernel };
  const blocked = runsBlocked(b, channels) ? blockedInputGradientFilter(b, w, forward) : undefined;
  const flipped = blocked ? w
    : b.one('Slice', [b.one('Transpose', [w], { perm: [1, 0, 2, 3] }), b.ints([-1, -1]), b.ints([-(2 ** 31), -(2 ** 31)]), b.ints([2, 3]), b.ints([-1, -1])]);
  const dx = b.fresh('Conv');
  emitConv(b, dy, flipped, undefined, attributeProtos({ dilations: g.dilations, pads, kernel_shape: g.kernel }), channels, dx, b.fresh('Conv_node'), blocked);
  return dx;
}

export function biasGradient(b: GraphBuilder, dy: string): string {
  return b.reduceSum(dy, [0, 2, 3], false);
}

export function convGradient(ctx: GradientContext): (string | undefined)[] {
  const { b, node } = ctx;
  const [x, w, bias] = node.inputs as [string, string, string | undefined];
  const dy = ctx.dy[0]!;
  const g = convGeometry(ctx, x, node.outputs[0]!, ctx.shape(w));
  return [
    ctx.needs(0) ? convInputGradient(b, dy, w, g) : undefined,
    ctx.needs(1) ? convFilterGradient(b, x, dy, g, ctx.shape(w)) : undefined,
    bias && ctx.needs(2) ? biasGradient(b, dy) : undefined,
  ];
}
