/**
 * The frozen teacher runs in onnxruntime-node (no gradient is needed, and it is ~15x faster than tfjs
 * wasm here): its tap tensors are added as graph outputs and turned into normalised attention maps.
 */
import type * as ort from 'onnxruntime-node';
import { createSession } from '../verify/onnx-runtime.js';
import { attentionMapsNchw } from './attention.js';
import * as ortModule from 'onnxruntime-node';

export class TeacherMaps {
  private constructor(private readonly session: ort.InferenceSession, readonly tapNames: string[], readonly p: number) {}

  /** `bytes`: the teacher model with `tapNames` already exposed as outputs. */
  static async create(bytes: Uint8Array, where: string, tapNames: string[], p: number): Promise<TeacherMaps> {
    return new TeacherMaps(await createSession(bytes, where), tapNames, p);
  }

  /** Normalised attention maps [N, H*W] per tap for an NCHW batch (the exact batch the student sees). */
  async maps(nchw: Float32Array, dims: number[]): Promise<Float32Array[]> {
    const feeds = { [this.session.inputNames[0]!]: new ortModule.Tensor('float32', nchw, dims) };
    const out = await this.session.run(feeds, this.tapNames);
    return this.tapNames.map((name) => {
      const t = out[name]!;
      const [n, c, h, w] = t.dims as number[];
      return attentionMapsNchw(t.data as Float32Array, n!, c!, h! * w!, this.p);
    });
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
