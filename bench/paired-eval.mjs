// Evaluation speed of nad-onnx against raw onnxruntime-node, in one process and in alternation, so that the
// machine's drift between two processes minutes apart does not decide the ratio.
//   node bench/paired-eval.mjs <model.onnx> <test ImageFolder> [rounds]
// Raw: a session with onnxruntime's defaults (2 intra-op threads, all graph optimisations) over the test images
// already decoded and transposed to NCHW, batch 256: the ceiling. nad-onnx: `evaluateMetrics` as `clean` and
// `eval` call it (its own session, normalising and transposing per batch, the clean pass and the grid-triggered
// pass over the non-target images). Prints a JSON line: images/s of each side over all rounds, each round's, and
// the ratio: the median of the rounds' ratios (and the ratio of the totals beside it).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { loadDataset } from '../dist/data/load-dataset.js';
import { createEvaluationSession, nhwcToNchw, useThreads } from '../dist/verify/onnx-runtime.js';
import { evaluateMetrics } from '../dist/verify/metrics.js';
import { parseTrigger } from '../dist/verify/triggers.js';

export async function pairedEval(model, folder, rounds = 4) {
  useThreads(2);
  const shape = { c: 3, h: 32, w: 32 };
  const test = await loadDataset({ path: folder, shape, numClasses: 10, flag: '--test' });
  const bytes = new Uint8Array(readFileSync(model));
  const ours = await createEvaluationSession(bytes, model, false);
  const raw = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const x = nhwcToNchw(test.x, test.n, 32, 32, 3);
  const trigger = await parseTrigger('grid', shape);
  const size = 3 * 32 * 32, B = 256;
  const runRaw = async () => {
    for (let i = 0; i < test.n; i += B) {
      const n = Math.min(B, test.n - i);
      await raw.run({ [raw.inputNames[0]]: new ort.Tensor('float32', x.subarray(i * size, (i + n) * size), [n, 3, 32, 32]) });
    }
    return test.n;
  };
  const runOurs = async () => {
    const m = await evaluateMetrics(ours, test, { trigger, target: 0 });
    return m.n + test.labels.filter((l) => l !== 0).length;
  };
  const time = async (f) => { const t0 = performance.now(); const images = await f(); return { images, s: (performance.now() - t0) / 1000 }; };
  await runRaw(); // warm-up of both sessions
  await runOurs();
  const sides = { raw: { images: 0, s: 0, rounds: [] }, ours: { images: 0, s: 0, rounds: [] } };
  for (let r = 0; r < rounds; r++) {
    for (const [name, f] of r % 2 === 0 ? [['raw', runRaw], ['ours', runOurs]] : [['ours', runOurs], ['raw', runRaw]]) {
      const t = await time(f);
      sides[name].images += t.images;
      sides[name].s += t.s;
      sides[name].rounds.push(+(t.images / t.s).toFixed(1));
    }
  }
  await ours.release();
  await raw.release();
  const rate = (x) => x.images / x.s;
  // The ratio is the median over rounds of each round's pair: one pass slowed by the machine moves it little.
  const pairs = sides.ours.rounds.map((v, i) => v / sides.raw.rounds[i]).sort((a, b) => a - b);
  const median = pairs.length % 2 ? pairs[(pairs.length - 1) / 2] : (pairs[pairs.length / 2 - 1] + pairs[pairs.length / 2]) / 2;
  return {
    raw_images_per_s: rate(sides.raw), ours_images_per_s: rate(sides.ours), ratio: median, ratio_of_totals: rate(sides.ours) / rate(sides.raw),
    raw_rounds: sides.raw.rounds, ours_rounds: sides.ours.rounds,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [model, folder, rounds] = process.argv.slice(2);
  console.log(JSON.stringify(await pairedEval(model, folder, Number(rounds ?? 8))));
}
