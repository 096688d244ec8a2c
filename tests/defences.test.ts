/**
 * `clean --method`: the pipeline shared by every defence: flag checks and their order, the accuracy
 * warning, the baseline, resumable runs of a method other than NAD, and that `ft` is NAD's teacher.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, isOneLineError } from './helpers/cli.js';
import { FIXTURES, modelPath, ROOT } from './helpers/fixtures.js';
import { schemaErrors } from './helpers/schemas.js';
import { killAtPhase, runCli } from './helpers/interrupted-run.js';

const dir = mkdtempSync(join(tmpdir(), 'nad-def-'));
const DATA = join(FIXTURES, 'data', 'fmnist-clean');
const TEST = join(FIXTURES, 'data', 'fmnist-test.npz');

describe('method flags', () => {
  const bad: [string, string[], RegExp][] = [
    ['an unknown method', ['--method', 'anp2'], /^nad-onnx: --method: unknown method 'anp2' \(choose from nad, ft, ft-sam, fst, sau, anp, rnp, or a chain such as anp\+ft-sam\)$/],
    ['an FT-SAM flag with NAD', ['--rho', '1'], /^nad-onnx: --rho does not apply to --method nad$/],
    ['an FST flag with FT-SAM', ['--method', 'ft-sam', '--alpha', '0.1'], /^nad-onnx: --alpha does not apply to --method ft-sam$/],
    ['a NAD flag with FST', ['--method', 'fst', '--betas', '1,2,3'], /^nad-onnx: --betas does not apply to --method fst$/],
    ['--lr-drop-epoch with a cosine method', ['--method', 'fst', '--lr-drop-epoch', '3'], /^nad-onnx: --lr-drop-epoch does not apply to --method fst$/],
    ['--teacher-method without --method nad', ['--method', 'ft', '--teacher-method', 'ft-sam'], /^nad-onnx: --teacher-method needs --method nad \(got --method ft\)$/],
    ['--teacher-method nad', ['--teacher-method', 'nad'], /^nad-onnx: --teacher-method: nad cannot teach itself/],
    ['an unknown --teacher-method', ['--teacher-method', 'anp2'], /^nad-onnx: --teacher-method: unknown method 'anp2' \(choose from ft, ft-sam, fst, sau\)$/],
    ['an ANP pruning that empties a layer', ['--method', 'anp', '--anp-iterations', '2', '--prune-threshold', '1', '--no-baseline'], /^nad-onnx: --method anp: pruning at mask <= 1 would leave BatchNorm '[^']+' with no channel \(all \d+ masks at or below it\); lower --prune-threshold or use --prune-by clean-acc:<points>$/],
    ['--unlearn-until of 1', ['--method', 'rnp', '--unlearn-until', '1'], /^nad-onnx: --unlearn-until: must be a training accuracy in \(0, 1\) \(got 1\)$/],
    ['an RNP flag with ANP', ['--method', 'anp', '--unlearn-until', '0.3'], /^nad-onnx: --unlearn-until does not apply to --method anp$/],
    ['--pgd-eps of 0', ['--method', 'sau', '--pgd-eps', '0'], /^nad-onnx: --pgd-eps: must be in \(0, 1\], a bound in \[0, 1\] pixel units \(got 0\)$/],
    ['--pgd-eps above 1', ['--method', 'sau', '--pgd-eps', '1.5'], /^nad-onnx: --pgd-eps: must be in \(0, 1\], a bound in \[0, 1\] pixel units \(got 1\.5\)$/],
    ['a SAU flag with NAD', ['--pgd-steps', '3'], /^nad-onnx: --pgd-steps does not apply to --method nad$/],
    ['--momentum with SAU', ['--method', 'sau', '--momentum', '0.5'], /^nad-onnx: --momentum does not apply to --method sau \(it trains with Adam\)$/],
    ['--engine tfjs with SAU', ['--method', 'sau', '--engine', 'tfjs'], /^nad-onnx: --engine tfjs: cannot run --method sau \(the tfjs engine has no gradients with respect to the input and eval-mode BatchNorm training\); use --engine onnxruntime$/],
    ['--no-baseline with NAD', ['--no-baseline'], /^nad-onnx: --no-baseline does not apply to --method nad$/],
    ['a bad FT-SAM value', ['--method', 'ft-sam', '--rho', '-1'], /^nad-onnx: --rho: must be a positive number \(got -1\)$/],
    ['--label-smoothing out of range', ['--method', 'ft-sam', '--label-smoothing', '1'], /^nad-onnx: --label-smoothing: must be in \[0, 1\)/],
    ['a planned peak above --max-memory', ['--max-memory', '0.05'], /^nad-onnx: the planned peak memory, 0\.\d\d GB, exceeds --max-memory 0\.05 GB \(largest part: the activations of one training step at batch 64, 0\.\d\d GB\); try a smaller --batch$/],
    ['a SAU plan above --max-memory: its PGD passes counted', ['--method', 'sau', '--max-memory', '0.05'], /^nad-onnx: the planned peak memory, [\d.]+ GB, exceeds --max-memory 0\.05 GB \(largest part: 2 input-gradient passes \(PGD\) at batch 256, [\d.]+ GB\); try a smaller --batch$/],
    ['--threads 0', ['--threads', '0'], /^nad-onnx: --threads: expected a whole number of threads from 1 to 1024, got 0$/],
    ['--threads not a number', ['--threads', 'two'], /^nad-onnx: --threads: expected an integer, got 'two'$/],
    ['--max-memory not positive', ['--max-memory', '0'], /^nad-onnx: --max-memory: must be a positive number of GB \(got 0\)$/],
    ['--device cuda without onnxruntime\'s CUDA provider', ['--device', 'cuda'], /^nad-onnx: --device cuda: onnxruntime's CUDA provider is not installed; install onnxruntime-node on linux\/x64 without ONNXRUNTIME_NODE_INSTALL=skip/],
  ];
  for (const [name, extra, pattern] of bad) {
    it(`${name}: exit 2, one line, no output`, async () => {
      const out = join(dir, `bad-${name.replace(/\W/g, '')}.onnx`);
      const r = await cli(['clean', '--method', 'nad', modelPath('wrn16_1'), '--data', DATA, '--ratio', '0.1', '--out', out, ...extra]);
      expect(r.code, r.stderr).toBe(2);
      expect(isOneLineError(r.stderr), r.stderr).toBe(true);
      expect(r.stderr.trim()).toMatch(pattern);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('ANP, RNP and a chain with RNP on a graph with no BatchNorm (a folded torchvision ResNet, restoration off): exit 2, one line, no output, before the baseline trains', async () => {
    for (const [method, masker] of [['anp', 'ANP'], ['rnp', 'RNP'], ['ft-sam+rnp', 'RNP']] as const) {
      const out = join(dir, `no-bn-${method}.onnx`);
      // The fine-tuning baseline is on: the refusal must come before it, which the absent checkpoint shows (a
      // baseline epoch would have saved one).
      const ck = join(dir, `no-bn-${method}-checkpoint`);
      const r = await cli(['clean', modelPath('tvresnet_w16'), '--data', DATA, '--ratio', '0.1', '--method', method, '--no-bn-restore', '--checkpoint', ck, '--out', out]);
      expect(existsSync(join(ck, 'nad-onnx-checkpoint.bin')), 'a baseline epoch ran').toBe(false);
      expect(r.code, r.stderr).toBe(2);
      expect(isOneLineError(r.stderr), r.stderr).toBe(true);
      expect(r.stderr.trim()).toMatch(new RegExp(`^nad-onnx: --method ${method.replace('+', '\\+')}: \\S*tvresnet_w16\\.onnx has no BatchNorm layer \\(nor a folded one to restore\\); ${masker} masks BatchNorm channels$`));
      expect(existsSync(out)).toBe(false);
    }
  });

  it('an output over an input or over the other output: refused at once (exit 2, one line), nothing trained or written', async () => {
    const cases: [string[], RegExp][] = [
      [['--out', modelPath('wrn16_1')], /^nad-onnx: --out .*wrn16_1\.onnx: refusing to overwrite the input model$/],
      [['--out', join(dir, 'h.onnx'), '--html', TEST], /^nad-onnx: --html .*fmnist-test\.npz: refusing to overwrite an input \(.*fmnist-test\.npz\)$/],
      [['--out', join(dir, 'same.onnx'), '--html', join(dir, 'same.onnx')], /^nad-onnx: --html .*same\.onnx: the same file as --out$/],
    ];
    for (const [extra, pattern] of cases) {
      const t0 = Date.now();
      const r = await cli(['clean', '--method', 'nad', modelPath('wrn16_1'), '--data', DATA, '--test', TEST, '--ratio', '0.1', ...extra]);
      expect(r.code, r.stderr).toBe(2);
      expect(isOneLineError(r.stderr), r.stderr).toBe(true);
      expect(r.stderr.trim()).toMatch(pattern);
      expect(Date.now() - t0).toBeLessThan(20_000); // refused before training (a run takes minutes)
    }
    expect(existsSync(join(dir, 'h.onnx')) || existsSync(join(dir, 'same.onnx'))).toBe(false);
  });

  it('a broken model is named before a flag that does not apply', async () => {
    const broken = join(dir, 'broken.onnx');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(broken, readFileSync(modelPath('wrn16_1')).subarray(0, 5000));
    const r = await cli(['clean', '--method', 'nad', broken, '--data', DATA, '--out', join(dir, 'x.onnx'), '--rho', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/broken\.onnx/);
    expect(r.stderr).not.toMatch(/--rho/);
  });

  it('bad data is named before a flag that does not apply', async () => {
    const r = await cli(['clean', modelPath('wrn16_1'), '--data', join(dir, 'missing'), '--out', join(dir, 'x.onnx'), '--method', 'fst', '--rho', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing/);
    expect(r.stderr).not.toMatch(/--rho/);
  });
});

describe('accuracy warning', () => {
  it('a drop of more than 3 points with no gate: one warning line with the fine-tuning baseline\'s drop; none with --max-acc-drop', async () => {
    // The annealed fixture loses accuracy under any fine-tuning at NAD's learning rate (README).
    const args = ['clean', '--method', 'nad', modelPath('wrn16_1'), '--data', DATA, '--test', TEST, '--teacher-epochs', '1', '--epochs', '1', '--json'];
    const r = await cli([...args, '--out', join(dir, 'warn.onnx')]);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    const drop = rep.before.acc_all - rep.after.acc_all, baseline = rep.before.acc_all - rep.teacher.acc_all;
    expect(drop).toBeGreaterThan(3);
    expect(rep.warnings).toEqual([`warning: NAD lost ${drop.toFixed(2)} points of acc_all (${rep.before.acc_all.toFixed(2)} -> ${rep.after.acc_all.toFixed(2)}); plain fine-tuning lost ${baseline.toFixed(2)}; set --max-acc-drop to refuse such a model`]);
    expect(r.stderr.trim().split('\n').filter((l) => l.includes('warning'))).toEqual([`nad-onnx: ${rep.warnings[0]}`]);
    const gated = await cli([...args, '--out', join(dir, 'warn-gated.onnx'), '--max-acc-drop', '100']);
    expect(gated.code).toBe(0);
    expect(JSON.parse(gated.stdout).warnings).toEqual([]);
    expect(gated.stderr).not.toMatch(/warning/);
  });

  it('NAD with an SAU teacher names that teacher, not plain fine-tuning, beside its drop', async () => {
    const r = await cli(['clean', '--method', 'nad', '--teacher-method', 'sau', modelPath('wrn16_1'), '--data', DATA, '--test', TEST,
      '--ratio', '0.5', '--teacher-epochs', '1', '--epochs', '1', '--json', '--out', join(dir, 'warn-sau.onnx')]);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    const drop = rep.before.acc_all - rep.after.acc_all, teacher = rep.before.acc_all - rep.teacher.acc_all;
    expect(drop).toBeGreaterThan(3);
    expect(rep.baseline).toEqual({ method: 'sau' });
    expect(rep.warnings).toEqual([`warning: NAD lost ${drop.toFixed(2)} points of acc_all (${rep.before.acc_all.toFixed(2)} -> ${rep.after.acc_all.toFixed(2)}); its SAU teacher lost ${teacher.toFixed(2)}; set --max-acc-drop to refuse such a model`]);
  });
});

describe('methods share one pipeline', () => {
  it('--method ft is NAD\'s teacher: the same flags and seed give the teacher\'s figures', async () => {
    const common = ['--data', DATA, '--test', TEST, '--trigger', 'grid', '--target', '0', '--lr-drop-epoch', '1', '--json', '--quiet'];
    const nad = JSON.parse((await cli(['clean', '--method', 'nad', modelPath('wrn16_1_nad'), ...common, '--teacher-epochs', '2', '--epochs', '1', '--out', join(dir, 'n.onnx')])).stdout);
    const ft = JSON.parse((await cli(['clean', modelPath('wrn16_1_nad'), ...common, '--method', 'ft', '--epochs', '2', '--out', join(dir, 'f.onnx')])).stdout);
    expect(schemaErrors('clean-report.schema.json', ft)).toBe('');
    expect(ft.method).toBe('ft');
    expect(ft.after).toEqual(nad.teacher);
    expect(ft.teacher).toEqual(ft.after);
    expect(ft.baseline).toEqual({ method: 'output' });
    expect(ft.losses.ft.map((e: { loss: number }) => e.loss)).toEqual(nad.losses.teacher.map((e: { loss: number }) => e.loss));
  });

  it('--no-baseline: no baseline run, no teacher row', async () => {
    const r = await cli(['clean', modelPath('wrn16_1_nad'), '--data', DATA, '--ratio', '0.2', '--method', 'fst', '--epochs', '1', '--no-baseline', '--out', join(dir, 'nb.onnx'), '--json', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(schemaErrors('clean-report.schema.json', rep)).toBe('');
    expect(rep.teacher).toBeNull();
    expect(rep.baseline).toBeNull();
    expect(Object.keys(rep.losses)).toEqual(['fst']);
    expect(rep.memory.training_state_mb).toBeGreaterThan(rep.memory.parameters_mb);
  });

  /**
   * `clean <model> <flags>` run through, then again killed (SIGKILL) once the checkpoint holds `phase` and run
   * once more: the resumed run must end in the same bytes. Returns both reports.
   */
  async function killedAndResumed(tag: string, model: string, flags: string[], phase: string) {
    const ck = mkdtempSync(join(tmpdir(), `nad-ck-${tag}-`));
    const args = (out: string, extra: string[] = []) => [join(ROOT, 'dist', 'cli', 'main.js'), 'clean', modelPath(model), '--data', DATA, ...flags, '--out', out, '--quiet', ...extra];
    const reference = join(ck, 'reference.onnx');
    expect(await runCli(args(reference, ['--report', join(ck, 'reference.json')]))).toBe(0);
    const ckDir = join(ck, 'state'), out = join(ck, 'resumed.onnx');
    await killAtPhase(args(out, ['--checkpoint', ckDir]), ckDir, phase);
    expect(existsSync(out)).toBe(false);
    expect(await runCli(args(out, ['--checkpoint', ckDir, '--report', join(ck, 'resumed.json')]))).toBe(0);
    expect(readFileSync(out).equals(readFileSync(reference))).toBe(true);
    const report = (f: string) => JSON.parse(readFileSync(join(ck, f), 'utf8'));
    return { ref: report('reference.json'), rep: report('resumed.json') };
  }
  const noSeconds = (l: { seconds: number }[]) => l.map((e) => ({ ...e, seconds: 0 }));

  it('a killed FT-SAM run resumes from its checkpoint (baseline finished, FT-SAM half done) and ends in the same bytes', async () => {
    await killedAndResumed('sam', 'wrn16_1_nad', ['--ratio', '0.3', '--method', 'ft-sam', '--epochs', '2', '--batch', '32'], 'ft-sam');
  });

  it('ANP killed after a round of iterations resumes (masks, momentum and random stream restored) and ends in the same bytes', async () => {
    const { ref, rep } = await killedAndResumed('anp', 'wrn16_1_nad',
      ['--ratio', '0.2', '--method', 'anp', '--anp-iterations', '110', '--prune-threshold', '0.9', '--batch', '8', '--no-baseline'], 'anp');
    expect(ref.parameters.pruned_channels, 'the masks must decide something for the bytes to show them').toBeGreaterThan(0);
    expect(noSeconds(rep.losses.anp)).toEqual(noSeconds(ref.losses.anp));
    expect(rep.losses.anp).toHaveLength(2);
  });

  it('RNP killed while recovering its masks resumes (masks, momentum and random stream restored) and ends in the same bytes', async () => {
    const { ref, rep } = await killedAndResumed('rnp', 'wrn16_1_unfused',
      ['--ratio', '0.5', '--method', 'rnp', '--unlearn-until', '0.5', '--epochs', '6', '--batch', '64', '--prune-threshold', '0.9', '--no-baseline'], 'recover');
    expect(ref.parameters.pruned_channels, 'the masks must decide something for the bytes to show them').toBeGreaterThan(0);
    expect(noSeconds(rep.losses.recover)).toEqual(noSeconds(ref.losses.recover));
    expect(rep.engine.unlearn).toBe('checkpoint');
  });

  it('a chain killed in the stage after ANP takes the learned masks from the checkpoint and ends in the same bytes', async () => {
    const { ref, rep } = await killedAndResumed('anp-chain', 'wrn16_1_nad',
      ['--ratio', '0.2', '--method', 'anp+ft', '--anp-iterations', '3', '--prune-threshold', '0.99', '--epochs', '2', '--batch', '8', '--no-baseline'], 'stage2/ft');
    expect(ref.parameters.stages[0].pruned_channels).toBeGreaterThan(0);
    expect(rep.engine.anp).toBe('checkpoint');
  });
});

describe('anp: pruning is written into the original graph', () => {
  it('a pruned channel\'s BatchNorm scale is 0 (shift kept); a restored BatchNorm folds back as zero conv weights; the count matches the report', async () => {
    const { loadModel } = await import('../src/import/load-model.js');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { cli } = await import('./helpers/cli.js');
    const { modelPath, FIXTURES } = await import('./helpers/fixtures.js');
    for (const name of ['wrn16_1_unfused', 'wrn16_1_nad']) {
      const dir = mkdtempSync(join(tmpdir(), 'nad-anp-'));
      const out = join(dir, 'anp.onnx');
      const r = await cli(['clean', modelPath(name), '--data', join(FIXTURES, 'data', 'fmnist-clean'), '--ratio', '0.5', '--method', 'anp', '--anp-iterations', '4',
        '--batch', '32', '--prune-threshold', '0.995', '--no-baseline', '--out', out, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const rep = JSON.parse(r.stdout);
      expect(rep.method).toBe('anp');
      const pruned = rep.parameters.pruned_channels as number;
      expect(pruned).toBeGreaterThan(0);
      expect(pruned).toBeLessThan(rep.parameters.batchnorm_channels);
      const before = loadModel(modelPath(name)), after = loadModel(out);
      let zeroScales = 0, zeroRows = 0, shiftsKept = true;
      for (const n of before.proto.graph!.node!) {
        if (n.opType === 'BatchNormalization') {
          const s0 = before.initializers.get(n.input![1]!)!.data as Float32Array, s1 = after.initializers.get(n.input![1]!)!.data as Float32Array;
          const b0 = before.initializers.get(n.input![2]!)!.data as Float32Array, b1 = after.initializers.get(n.input![2]!)!.data as Float32Array;
          s1.forEach((v, k) => { if (v === 0 && s0[k] !== 0) { zeroScales++; if (b1[k] !== b0[k]) shiftsKept = false; } });
        }
        if (n.opType === 'Conv' && n.input![2] && name === 'wrn16_1_nad') {
          const w1 = after.initializers.get(n.input![1]!)!;
          const per = w1.data.length / w1.dims[0]!;
          for (let o = 0; o < w1.dims[0]!; o++) if ((w1.data as Float32Array).subarray(o * per, (o + 1) * per).every((v) => v === 0)) zeroRows++;
        }
      }
      expect(shiftsKept).toBe(true);
      expect(zeroScales + zeroRows, name).toBe(pruned);
    }
  }, 600_000);
});

describe('rnp: unlearn until the training accuracy is low, recover masks, prune the original', () => {
  it('unlearning stops at the first epoch at or below --unlearn-until; the masks prune the original model\'s BatchNorm scales, shifts kept', async () => {
    const { loadModel } = await import('../src/import/load-model.js');
    const out = join(dir, 'rnp.onnx');
    const r = await cli(['clean', modelPath('wrn16_1_unfused'), '--data', DATA, '--ratio', '0.5', '--test', TEST, '--trigger', 'grid', '--target', '0', '--method', 'rnp',
      '--unlearn-until', '0.5', '--epochs', '2', '--batch', '64', '--prune-threshold', '0.9', '--no-baseline', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(schemaErrors('clean-report.schema.json', rep)).toBe('');
    expect(rep.method).toBe('rnp');
    const unlearn = rep.losses.unlearn as { terms: { acc: number } }[];
    expect(unlearn.length).toBe(rep.parameters.unlearned_epochs);
    expect(unlearn.length).toBeLessThan(20);
    // Every epoch before the last was above the bar, the last at or below it.
    unlearn.slice(0, -1).forEach((e, i) => expect(e.terms.acc, `epoch ${i + 1}`).toBeGreaterThan(0.5));
    expect(unlearn[unlearn.length - 1]!.terms.acc).toBeLessThanOrEqual(0.5);
    expect(rep.losses.recover.length).toBe(2);
    const pruned = rep.parameters.pruned_channels as number;
    expect(pruned).toBeGreaterThan(0);
    expect(pruned).toBeLessThan(rep.parameters.batchnorm_channels);
    const before = loadModel(modelPath('wrn16_1_unfused')), after = loadModel(out);
    let zeroScales = 0, otherChanges = 0;
    for (const [name, t] of before.initializers) {
      const a = after.initializers.get(name)!.data as Float32Array, b = t.data as Float32Array;
      const bn = before.proto.graph!.node!.find((n) => n.opType === 'BatchNormalization' && n.input![1] === name);
      b.forEach((v, k) => { if (a[k] !== v) { if (bn && a[k] === 0) zeroScales++; else otherChanges++; } });
    }
    // Only the pruned scales differ: the unlearned weights never reach the output.
    expect(otherChanges).toBe(0);
    expect(zeroScales).toBe(pruned);
  }, 600_000);
});

describe('chains: --method anp+ft', () => {
  it('the first stage is ANP alone (same seed, same model), the second starts from its pruned model; one report shows both', async () => {
    const common = ['--data', DATA, '--ratio', '0.5', '--test', TEST, '--trigger', 'grid', '--target', '0', '--anp-iterations', '6',
      '--prune-threshold', '0.995', '--no-baseline', '--json'];
    const alone = await cli(['clean', modelPath('wrn16_1_nad'), ...common, '--method', 'anp', '--out', join(dir, 'anp-alone.onnx')]);
    expect(alone.code, alone.stderr).toBe(0);
    const chained = await cli(['clean', modelPath('wrn16_1_nad'), ...common, '--method', 'anp+ft', '--epochs', '1', '--batch', '32', '--out', join(dir, 'anp-ft.onnx')]);
    expect(chained.code, chained.stderr).toBe(0);
    const a = JSON.parse(alone.stdout), c = JSON.parse(chained.stdout);
    expect(schemaErrors('clean-report.schema.json', a)).toBe('');
    expect(schemaErrors('clean-report.schema.json', c)).toBe('');
    expect(c.method).toBe('anp+ft');
    expect(c.stages).toHaveLength(1);
    expect(c.stages[0].method).toBe('anp');
    // Stage 1 measures exactly what ANP alone wrote.
    expect(c.stages[0].metrics).toEqual(a.after);
    expect(c.parameters.stages[0].pruned_channels).toBe(a.parameters.pruned_channels);
    expect(a.parameters.pruned_channels).toBeGreaterThan(0);
    // --epochs and --batch went to the last stage.
    expect(c.parameters.stages[1]).toMatchObject({ method: 'ft', epochs: 1, batch: 32 });
    expect(Object.keys(c.losses).sort()).toEqual(['anp', 'ft']);
    expect(c.after.acc_all).not.toBe(a.after.acc_all);
  }, 600_000);

  it('--lr goes to the last stage only; the stages before run at their own defaults (ft+ft)', async () => {
    const r = await cli(['clean', modelPath('wrn16_1_nad'), '--data', DATA, '--ratio', '0.2', '--method', 'ft+ft', '--lr', '0.003', '--epochs', '1',
      '--no-baseline', '--json', '--out', join(dir, 'ft-ft.onnx')]);
    expect(r.code, r.stderr).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(c.parameters.stages[0]).toMatchObject({ method: 'ft', lr: 0.1, epochs: 10 });
    expect(c.parameters.stages[1]).toMatchObject({ method: 'ft', lr: 0.003, epochs: 1 });
    // The epochs ran at those rates: stage 1 at 0.1 then 0.01 from epoch 2 (or a tenth of them after a restart), stage 2 at 0.003.
    expect(c.losses['ft#1']).toHaveLength(10);
    expect(c.losses['ft#1'][0].lr / c.losses['ft#1'][9].lr).toBeCloseTo(10, 6);
    expect([0.1, 0.01, 0.001]).toContain(c.losses['ft#1'][0].lr);
    expect(c.losses['ft#2'].map((e: { lr: number }) => e.lr)).toEqual([0.003]);
  }, 600_000);

  it('a NAD stage trains its own teacher on the stage before\'s model, not the baseline\'s teacher of the original', async () => {
    const r = await cli(['clean', modelPath('wrn16_1_nad'), '--data', DATA, '--ratio', '0.5', '--test', TEST, '--trigger', 'grid', '--target', '0',
      '--method', 'anp+nad', '--anp-iterations', '6', '--prune-threshold', '0.995', '--teacher-epochs', '1', '--epochs', '1', '--json', '--out', join(dir, 'anp-nad.onnx')]);
    expect(r.code, r.stderr).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(Object.values(c.engine)).not.toContain('checkpoint');
    // The baseline fine-tuned the original model for its default 10 epochs; the NAD stage's teacher ran 1 (taken
    // from the baseline, it would show the baseline's 10).
    expect(c.losses.teacher).toHaveLength(1);
    expect(c.parameters.stages[1]).toMatchObject({ method: 'nad', teacher_epochs: 1 });
  }, 600_000);

  it('an unknown method in a chain: exit 2, one line, no output', async () => {
    const out = join(dir, 'chain-bad.onnx');
    const r = await cli(['clean', modelPath('wrn16_1'), '--data', DATA, '--ratio', '0.1', '--method', 'anp+ft-sma', '--out', out]);
    expect(r.code).toBe(2);
    expect(isOneLineError(r.stderr), r.stderr).toBe(true);
    expect(r.stderr.trim()).toBe("nad-onnx: --method: unknown method 'ft-sma' in the chain 'anp+ft-sma' (choose from nad, ft, ft-sam, fst, sau, anp, rnp, or a chain such as anp+ft-sam)");
    expect(existsSync(out)).toBe(false);
  });
});

describe('sau through the pipeline', () => {
  it('a short run: the report follows the schema, the shared examples were found and unlearned, the output verified', async () => {
    const out = join(dir, 'sau.onnx');
    const r = await cli(['clean', modelPath('wrn16_1_nad'), '--data', DATA, '--ratio', '0.5', '--test', TEST, '--trigger', 'grid', '--target', '0',
      '--method', 'sau', '--epochs', '1', '--batch', '125', '--no-baseline', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(schemaErrors('clean-report.schema.json', rep)).toBe('');
    expect(rep.method).toBe('sau');
    expect(rep.engine.sau).toBe('onnxruntime');
    expect(rep.parameters).toMatchObject({ pgd_eps: 0.2, pgd_steps: 5, optimizer: 'adam', lr: 1e-4, batch: 125 });
    const [epoch] = rep.losses.sau;
    expect(epoch.images).toBe(250);
    // On a backdoored model most perturbed images fool both models alike, and the unlearning loss is positive.
    expect(epoch.terms.shared_fraction).toBeGreaterThan(0.5);
    expect(epoch.terms.shared).toBeGreaterThan(0);
    expect(rep.export_check.max_abs_logit_diff).toBeLessThan(1e-3);
    expect(existsSync(out)).toBe(true);
  }, 600_000);
});
