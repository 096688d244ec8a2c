// Raw onnxruntime-node inference throughput on a model and an ImageFolder (the ceiling for `eval`):
// images decoded once up front, batch 256, 2 threads. Prints {"images_per_s": ...}.
import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { indexImageFolder, loadImageFolder } from '../dist/data/image-folder.js';
import { nhwcToNchw } from '../dist/verify/onnx-runtime.js';

const [model, folder] = process.argv.slice(2);
const index = indexImageFolder(folder);
const d = await loadImageFolder(index, Int32Array.from({ length: index.files.length }, (_, i) => i), { c: 3, h: 32, w: 32 });
const x = nhwcToNchw(d.x, d.n, 32, 32, 3);
const s = await ort.InferenceSession.create(readFileSync(model), { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
const B = 256, size = 3 * 32 * 32;
const t0 = performance.now();
for (let i = 0; i < d.n; i += B) {
  const n = Math.min(B, d.n - i);
  await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x.subarray(i * size, (i + n) * size), [n, 3, 32, 32]) });
}
console.log(JSON.stringify({ images_per_s: d.n / ((performance.now() - t0) / 1000), images: d.n }));
