/**
 * Dense 2-D convolutions through onnxruntime's blocked-layout kernels (domain com.microsoft.nchwc). Its
 * optimiser uses them only for constant weights; a training graph feeds its weights, so it emits them
 * itself: the filter is reordered in the graph (a few KB per run) into the blocks MLAS expects, the input
 * and output are reordered around the conv. A [64, 16, 32, 32] 3x3 conv with fed weights: 6.5-8.2 ms as
 * Conv, 3.1-3.6 ms this way, AVX-512 (bench/README.md).
 */
import * as ort from 'onnxruntime-node';
import type { AttributeProto } from '../onnx/onnx-schema.js';
import { singleNodeModel } from '../onnx/single-node-model.js';
import { executionProviders } from '../verify/device.js';
import { attributeProtos, type GraphBuilder } from './graph-builder.js';

export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

let probed: Promise<number> | undefined;

/**
 * MLAS's channel block (16 with AVX-512, 8 with AVX2), read off the channel count ReorderInput pads 4
 * channels to; 0 where the blocked kernels are missing, on a GPU provider, or with NAD_ONNX_NCHWC=0.
 */
export function nchwcBlockSize(): Promise<number> {
  probed ??= (async () => {
    if (process.env.NAD_ONNX_NCHWC === '0' || executionProviders().some((p) => p !== 'cpu')) return 0;
    const bytes = singleNodeModel({ opType: 'ReorderInput', domain: NCHWC_DOMAIN }, [1, 4, 1, 1]);
    try {
      const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
      try {
        const out = await s.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4, 1, 1]) });
        const block = out.y!.dims[1]!;
        return block >= 8 && (block & (block - 1)) === 0 ? block : 0;
      } finally {
        await s.release();
      }
    } catch {
      return 0;
    }
  })();
  return probed;
}

/** A conv's input and output channel counts, groups and kernel size. */
export interface ConvChannels {
  in: number;
  out: number;
  group: number;
  kernel: number[];
}

/** Whether a conv with these channels runs blocked: a block size, a dense 2-D conv, whole blocks in and out. */
export function runsBlocked(b: GraphBuilder, channels: ConvChannels): boolean {
  const B = b.nchwcBlock;
  return B > 0 && channels.group === 1 && channels.kernel.length === 2 && channels.out % B === 0 && channels.in % B === 0;
}

/**
 * The filter w [O, C, kh, kw] in MLAS's blocks [O/B][C/B][kh][kw][Bi][Bo], made once per weight. Two
 * transposes onnxruntime runs as block copies (one axis moved at a time) instead of one 6-D transpose, which
 * it runs element by element: a [512, 512, 3, 3] filter in 4-5 ms against 12-20 (bench/README.md).
 */
export function blockedFilter(b: GraphBuilder, w: string, channels: ConvChannels): string {
  const cached = b.nchwcFilters.get(w);
  if (cached) return cached;
  const B = b.nchwcBlock;
  const { out: o, in: c } = channels;
  const k = channels.kernel[0]! * channels.kernel[1]!;
  // [O/B, Bo, C/B * Bi * K] -> [O/B, C/B, Bi, K, Bo]: the output channel's lane moves innermost.
  const laneLast = b.one('Transpose', [b.one('Reshape', [w, b.ints([o / B, B, (c / B) * B * k])])], { perm: [0, 2, 1] });
  // [O/B * C/B, Bi, K, Bo] -> [O/B * C/B, K, Bi, Bo]: the kernel taps move outside the input lane.
  const taps = b.one('Transpose', [b.one('Reshape', [laneLast, b.ints([(o / B) * (c / B), B, k, B])])], { perm: [0, 2, 1, 3] });
  const blocked = b.one('Reshape', [taps, b.ints([o, c, ...channels.kernel])]);
  b.nchwcFilters.set(w, blocked);
  return blocked;
}

/**
 * The blocked filter of a stride-1 input gradient (the conv's filter with its channel axes swapped and its
 * kernel flipped), made from the forward's blocked filter: each B x B block transposed, the two block axes
 * swapped, the taps reversed (reversing the flattened taps flips both kernel axes).
 */
export function blockedInputGradientFilter(b: GraphBuilder, w: string, channels: ConvChannels): string {
  const B = b.nchwcBlock;
  const { out: o, in: c } = channels;
  const k = channels.kernel[0]! * channels.kernel[1]!;
  const forward = blockedFilter(b, w, channels); // [O/B][C/B][K][Bc][Bo]
  // Each B x B block transposed, as two moves of one axis over the whole filter: [X, Bc, Bo] -> [Bc, X, Bo] ->
  // [X, Bo, Bc]. onnxruntime runs the direct [0, 2, 1] one small block at a time: 20 ms for a [512, 512, 3, 3]
  // filter against 8 (bench/README.md).
  const outer = b.one('Transpose', [b.one('Reshape', [forward, b.ints([(o / B) * (c / B) * k, B, B])])], { perm: [1, 0, 2] });
  const lanes = b.one('Transpose', [outer], { perm: [1, 2, 0] });
  const swapped = b.one('Transpose', [b.one('Reshape', [lanes, b.ints([o / B, c / B, k * B * B])])], { perm: [1, 0, 2] }); // [C/B][O/B][K][Bo][Bc]
  const flipped = k === 1 ? swapped
    : b.one('Slice', [b.one('Reshape', [swapped, b.ints([(c / B) * (o / B), k, B * B])]), b.ints([-1]), b.ints([-(2 ** 31)]), b.ints([1]), b.ints([-1])]);
  return b.one('Reshape', [flipped, b.ints([c, o, ...channels.kernel])]);
}

/**
 * x [N, C, H, W] in MLAS's blocked layout [N, C/B, H, W, B], reordered once per tensor: a block's 3x3 conv, its
 * 1x1 shortcut and their filter gradients read the same input.
 */
export function blockedInput(b: GraphBuilder, x: string, name: string): string {
  b.usesNchwc = true;
  let xb = b.nchwcInputs.get(x);
  if (!xb) {
    xb = b.fresh('nchwc_in');
    b.nchwcInputs.set(x, xb);
    b.nodes.push({ name: `${name}#reorder_in`, opType: 'ReorderInput', domain: NCHWC_DOMAIN, input: [x], output: [xb], attribute: [] });
  }
  return xb;
}

/**
 * Emits y = Conv(x, w[, bias]) with the given (ONNX Conv) attributes; `channels` are the conv's input and
 * output channel counts. Blocked when runsBlocked(); otherwise a plain Conv. `blocked` is w already in
 * MLAS's blocks (blockedFilter()), where the caller made it. MLAS's plain-input kernel (a first layer on
 * RGB) is not used: with it, three SGD steps on the ResNet-50 fixture (7x7 stride-2 stem, then MaxPool) ended
 * 4.7e-2 away from PyTorch's weight changes against 1.5e-4 without it, though one step's gradients agreed
 * within 1e-5; the cause was not found.
 */
export function emitConv(
  b: GraphBuilder, x: string, w: string, bias: string | undefined, attribute: AttributeProto[], channels: ConvChannels, y: string, name: string,
  blocked?: string,
): void {
  if (!runsBlocked(b, channels)) {
    b.nodes.push({ name, opType: 'Conv', input: bias ? [x, w, bias] : [x, w], output: [y], attribute });
    return;
  }
  const wb = blocked ?? blockedFilter(b, w, channels);
  const xb = blockedInput(b, x, name);
  const yb = b.fresh('nchwc_out');
  b.nodes.push({ name, opType: 'Conv', domain: NCHWC_DOMAIN, input: bias ? [xb, wb, bias] : [xb, wb], output: [yb], attribute });
  b.nodes.push({ name: `${name}#reorder_out`, opType: 'ReorderOutput', domain: NCHWC_DOMAIN, input: [yb], output: [y], attribute: attributeProtos({ channels: channels.out }) });
}
