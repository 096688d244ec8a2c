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

/**
 * Emits y = Conv(x, w[, bias]) with the given (ONNX Conv) attributes; `channels` are the conv's input and
 * output channel counts. Blocked when the builder has a block size, the conv is dense and its input and
 * output channels fill whole blocks; otherwise a plain Conv. MLAS's plain-input kernel (a first layer on
 * RGB) is not used: with it, three SGD steps on the ResNet-50 fixture (7x7 stride-2 stem, then MaxPool) ended
 * 4.7e-2 away from PyTorch's weight changes against 1.5e-4 without it, though one step's gradients agreed
 * within 1e-5; the cause was not found.
 */
export function emitConv(
  b: GraphBuilder, x: string, w: string, bias: string | undefined, attribute: AttributeProto[], channels: ConvChannels, y: string, name: string,
): void {
  const B = b.nchwcBlock;
  if (!B || channels.group !== 1 || channels.kernel.length !== 2 || channels.out % B !== 0 || channels.in % B !== 0) {
    b.nodes.push({ name, opType: 'Conv', input: bias ? [x, w, bias] : [x, w], output: [y], attribute });
    return;
  }
  b.usesNchwc = true;
  const [kh, kw] = channels.kernel as [number, number];
  const { out: o, in: c } = channels;
  // MLAS's filter blocks: [O/B][C/B][kh][kw][Bi][Bo].
  const filter = b.one('Transpose', [b.one('Reshape', [w, b.ints([o / B, B, c / B, B, kh, kw])])], { perm: [0, 2, 4, 5, 3, 1] });
  const wb = b.one('Reshape', [filter, b.ints([o, c, kh, kw])]);
  // One reorder per tensor: a block's 3x3 conv and its 1x1 shortcut read the same input.
  let xb = b.nchwcInputs.get(x);
  if (!xb) {
    xb = b.fresh('nchwc_in');
    b.nchwcInputs.set(x, xb);
    b.nodes.push({ name: `${name}#reorder_in`, opType: 'ReorderInput', domain: NCHWC_DOMAIN, input: [x], output: [xb], attribute: [] });
  }
  const yb = b.fresh('nchwc_out');
  b.nodes.push({ name, opType: 'Conv', domain: NCHWC_DOMAIN, input: bias ? [xb, wb, bias] : [xb, wb], output: [yb], attribute });
  b.nodes.push({ name: `${name}#reorder_out`, opType: 'ReorderOutput', domain: NCHWC_DOMAIN, input: [yb], output: [y], attribute: attributeProtos({ channels: o }) });
}
