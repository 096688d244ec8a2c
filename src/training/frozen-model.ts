/**
 * A frozen model in onnxruntime-node that returns any named tensors of its graph (they are exposed as graph
 * outputs): NAD's teacher taps, a reference copy's logits. No gradient flows into it.
 */
import * as ort from 'onnxruntime-node';
import { createSession } from '../verify/onnx-runtime.js';

export class FrozenModel {
  private constructor(private readonly session: ort.InferenceSession, readonly outputs: string[]) {}

  /** `bytes`: the model with `outputs` already exposed as graph outputs (modelBytes(..., outputs)). */
  static async create(bytes: Uint8Array, where: string, outputs: string[]): Promise<FrozenModel> {
    return new FrozenModel(await createSession(bytes, where), outputs);
  }

  /** The named tensors for an NCHW batch, in `outputs` order. */
  async run(nchw: Float32Array, dims: number[]): Promise<Float32Array[]> {
    const out = await this.session.run({ [this.session.inputNames[0]!]: new ort.Tensor('float32', nchw, dims) }, this.outputs);
    return this.outputs.map((name) => out[name]!.data as Float32Array);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
