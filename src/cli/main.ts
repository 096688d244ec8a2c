#!/usr/bin/env node
/** nad-onnx command line: parses arguments, runs a command, maps errors to the exit-code table. */
import { Command, CommanderError, Option } from 'commander';
import { BACKENDS } from '../backend/select-backend.js';
import { ENGINES, type EngineChoice } from '../training/engine.js';
import { DEFENCES } from '../defences/registry.js';
import { DEFAULT_METHOD } from '../defences/method-options.js';
import { DEVICES, type DeviceChoice } from '../verify/device.js';
import { describeError, ExitCode } from '../errors.js';
import { formatInspect, inspect } from '../inspect.js';
import { clean, GateRejection } from '../clean.js';
import { evaluate } from '../evaluate.js';
import { scan } from '../run-scan.js';
import { formatScan } from './format-scan.js';
import { scanJson } from '../scan/scan.js';
import { BadInputError } from '../errors.js';
import { formatCleanReport, formatMetrics } from './format-report.js';
import { progressPrinter } from './progress.js';
import { writeFileSync } from 'node:fs';

import { TOOL_VERSION as VERSION } from '../export/provenance.js';

function fail(message: string, exitCode: number): never {
  process.stderr.write(`nad-onnx: ${message}\n`);
  process.exit(exitCode);
}

const program = new Command();
program
  .name('nad-onnx')
  .description('Remove backdoors from ONNX image classifiers with Neural Attention Distillation')
  .version(VERSION)
  .showSuggestionAfterError(true)
  .exitOverride();

const backendOption = () => new Option('--backend <name>', 'TensorFlow.js backend').choices(BACKENDS).default('auto');
const threadsOption = () => new Option('--threads <n>', 'threads of each onnxruntime session (default 2; reruns repeat byte for byte at the same count)').argParser(num('--threads', true));
const deviceOption = () => new Option('--device <name>', "where onnxruntime runs (auto = CUDA when onnxruntime's CUDA provider loads, else cpu)").choices(DEVICES).default('auto');

program
  .command('inspect')
  .description('show the input, output, ops, parameters and residual-group taps of a model')
  .argument('<model>', 'ONNX model file')
  .option('--json', 'print one JSON object instead of the summary')
  .option('--taps <names>', 'comma-separated tensor names to use as taps instead of the detected ones')
  .addOption(backendOption())
  .addHelpText('after', '\nExamples:\n  $ nad-onnx inspect model.onnx\n  $ nad-onnx inspect model.onnx --json | jq .taps')
  .action(async (model: string, opts: { json?: boolean; taps?: string; backend: (typeof BACKENDS)[number] }) => {
    const r = await inspect(model, { backend: opts.backend, taps: opts.taps?.split(',').filter(Boolean) });
    process.stdout.write(opts.json ? JSON.stringify(r) + '\n' : formatInspect(r) + '\n');
  });

function numberList(flag: string) {
  return (v: string): number[] => {
    const xs = v.split(',').map((s) => Number(s.trim()));
    if (xs.length === 0 || xs.some((x) => !Number.isFinite(x))) throw new BadInputError(`${flag}: expected comma-separated numbers, got '${v}'`);
    return xs;
  };
}

function num(flag: string, integer = false) {
  return (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || (integer && !Number.isInteger(x))) throw new BadInputError(`${flag}: expected ${integer ? 'an integer' : 'a number'}, got '${v}'`);
    return x;
  };
}

program
  .command('eval')
  .description('measure ACC (and ASR / RA with a trigger) of an ONNX model with onnxruntime')
  .argument('<model>', 'ONNX model file')
  .requiredOption('--data <path>', 'test data: ImageFolder directory, .npz, .npy or IDX file')
  .option('--trigger <spec>', 'grid | square:<size> | blend:<png|random:seed>:<alpha> | sig:<delta>:<f> | patch:<png>:<x>:<y>')
  .option('--target <label>', 'the backdoor target class', num('--target', true))
  .option('--poisoned <path>', 'already-triggered test images (any attack), labelled with their true classes')
  .option('--mean <r,g,b>', 'per-channel mean the model was trained with', numberList('--mean'))
  .option('--std <r,g,b>', 'per-channel std the model was trained with', numberList('--std'))
  .addOption(deviceOption())
  .addOption(threadsOption())
  .option('--json', 'print one JSON object')
  .option('--quiet', 'no progress on stderr')
  .addHelpText('after', '\nExamples:\n  $ nad-onnx eval model.onnx --data cifar10/test\n  $ nad-onnx eval model.onnx --data test.npz --trigger grid --target 0 --json')
  .action(async (model: string, o: { data: string; trigger?: string; target?: number; poisoned?: string; mean?: number[]; std?: number[]; device: DeviceChoice; threads?: number; json?: boolean; quiet?: boolean }) => {
    const progress = o.quiet || o.json ? undefined : progressPrinter(process.stderr);
    const m = await evaluate({ model, data: o.data, trigger: o.trigger, target: o.target, poisoned: o.poisoned, mean: o.mean, std: o.std, device: o.device, threads: o.threads, onProgress: progress?.update });
    progress?.done();
    process.stdout.write(o.json ? JSON.stringify(m) + '\n' : formatMetrics(m) + '\n');
  });

program
  .command('clean')
  .description('remove a backdoor (Neural Attention Distillation by default, or another --method) and write the cleaned ONNX model')
  .argument('<model>', 'backdoored ONNX model')
  .requiredOption('--data <path>', 'clean data: ImageFolder directory, .npz, .npy or IDX file')
  .requiredOption('--out <path>', 'where to write the cleaned model')
  .option('--test <path>', 'test data for the report (default: the --data images)')
  .option('--trigger <spec>', 'trigger to measure ASR: grid | square:<size> | blend:<png|random:seed>:<alpha> | sig:<delta>:<f> | patch:<png>:<x>:<y>')
  .option('--target <label>', 'the backdoor target class', num('--target', true))
  .option('--poisoned <path>', 'already-triggered test images (any attack), labelled with their true classes')
  .option('--method <name>', `defence: ${DEFENCES.map((d) => `${d.name} (${d.summary})`).join('; ')} (default ${DEFAULT_METHOD}, the best worst case in bench/README.md's efficacy table)`)
  .option('--epochs <n>', 'epochs of the method (nad: distillation 20; ft 10; ft-sam 20; fst 10; sau 10; rnp: mask recovery 20)', num('--epochs', true))
  .option('--lr <lr>', 'learning rate (nad, ft: 0.1, x0.1 from --lr-drop-epoch; ft-sam, fst: 0.01, cosine; sau: Adam 1e-4; rnp: unlearning 0.01)', num('--lr'))
  .option('--batch <n>', 'batch size (nad, ft: 64; ft-sam, sau: 256; fst, anp, rnp: 128)', num('--batch', true))
  .option('--momentum <m>', 'SGD momentum (default 0.9)', num('--momentum'))
  .option('--weight-decay <wd>', 'L2 weight decay (nad, ft: 1e-4; ft-sam: 5e-4; fst: 0)', num('--weight-decay'))
  .option('--no-baseline', 'ft-sam, fst: skip the plain fine-tuning baseline run (the report then has no teacher row)')
  .option('--lr-drop-epoch <n>', 'nad, ft: epoch from which the learning rate is x0.1 (default 2)', num('--lr-drop-epoch', true))
  .option('--teacher <model>', 'nad: a ready teacher in ONNX (taps of the same spatial sizes)')
  .option('--teacher-method <name>', 'nad: the method that trains the teacher: ft (default), ft-sam, fst or sau')
  .option('--teacher-epochs <n>', 'nad: epochs of the teacher (default 10)', num('--teacher-epochs', true))
  .option('--betas <list>', 'nad: attention-loss weight per tap (default 500 for the first tap, 1000 for the others)', numberList('--betas'))
  .option('--p <p>', 'nad: exponent of the attention map (default 2)', num('--p'))
  .addOption(new Option('--attention <kind>', 'nad: attention operator (sum = p 1; mean-pow equals pow after normalisation; default pow)').choices(['sum', 'pow', 'mean-pow']))
  .option('--rho <rho>', 'ft-sam: neighbourhood size of adaptive SAM (default 2)', num('--rho'))
  .option('--label-smoothing <eps>', 'ft-sam: label smoothing (default 0.1)', num('--label-smoothing'))
  .option('--alpha <a>', 'fst: weight of the inner product with the original final layer (default 0.2)', num('--alpha'))
  .option('--anp-eps <e>', 'anp: bound of the multiplicative noise on BatchNorm channels (default 0.4)', num('--anp-eps'))
  .option('--anp-steps <n>', 'anp: noise ascent steps per batch (default 1)', num('--anp-steps', true))
  .option('--anp-alpha <a>', 'anp: weight of the clean loss against the perturbed one (default 0.2)', num('--anp-alpha'))
  .option('--mask-lr <lr>', 'anp, rnp: learning rate of the channel masks (default 0.2)', num('--mask-lr'))
  .option('--anp-iterations <n>', 'anp: mask updates, one batch each (default 2000)', num('--anp-iterations', true))
  .option('--unlearn-until <acc>', 'rnp: unlearn until the training accuracy is at or below this fraction (default 0.2)', num('--unlearn-until'))
  .option('--prune-threshold <t>', 'anp, rnp: prune channels whose mask is at or below this (default 0.2)', num('--prune-threshold'))
  .option('--prune-by <rule>', 'anp, rnp: clean-acc:<points> prunes the most that keeps accuracy on a held-back 10 % of --data within <points>')
  .option('--pgd-eps <e>', 'sau: L-inf bound of the shared adversarial perturbation, in [0, 1] pixel units (default 0.2)', num('--pgd-eps'))
  .option('--pgd-steps <n>', 'sau: PGD steps per batch (default 5)', num('--pgd-steps', true))
  .option('--ratio <fraction>', 'use a seeded random fraction of --data', num('--ratio'))
  .option('--mean <r,g,b>', 'per-channel mean the model was trained with', numberList('--mean'))
  .option('--std <r,g,b>', 'per-channel std the model was trained with', numberList('--std'))
  .option('--taps <names>', 'comma-separated tensor names to distil instead of the detected residual-group outputs')
  .option('--seed <n>', 'random seed (subset, shuffling, augmentation)', num('--seed', true), 0)
  .option('--no-bn-restore', 'train the graph as exported, without restoring BatchNorms folded into convolutions')
  .addOption(backendOption())
  .addOption(deviceOption())
  .addOption(threadsOption())
  .addOption(new Option('--engine <name>', 'training engine (auto = onnxruntime where it covers the graph, tfjs otherwise or on tensorflow-gpu)').choices(ENGINES).default('auto'))
  .option('--report <file>', 'also write the JSON report to a file')
  .option('--checkpoint <dir>', 'save the state after each epoch (ANP: every 100 iterations); rerunning with the same arguments resumes')
  .option('--html <file>', 'also write a self-contained HTML report (metrics, loss curves, attention maps)')
  .option('--json', 'print the JSON report instead of the table')
  .option('--quiet', 'no progress on stderr')
  .option('--max-acc-drop <points>', 'fail (exit 1, nothing written) if acc_all drops by more', num('--max-acc-drop'))
  .option('--max-asr <percent>', 'fail (exit 1, nothing written) if the ASR after is higher', num('--max-asr'))
  .option('--scan', 'scan for a backdoor without the trigger (Neural Cleanse) before and after cleaning; the report gets scan.before and scan.after')
  .option('--max-anomaly <index>', 'with --scan: fail (exit 1, nothing written) if the cleaned model\'s largest anomaly index is higher', num('--max-anomaly'))
  .option('--scan-epochs <n>', 'with --scan: epoch budget per class (default 20)', num('--scan-epochs', true))
  .option('--scan-images <n>', 'with --scan: scan at most this many --data images (default 1000)', num('--scan-images', true))
  .option('--max-memory <GB>', 'refuse to start (exit 2) when the planned peak memory is larger (default: the memory available)', num('--max-memory'))
  .addHelpText('after', '\nExamples:\n  $ nad-onnx clean model.onnx --data clean/ --out model.clean.onnx\n  $ nad-onnx clean model.onnx --data clean/ --method ft-sam --out model.clean.onnx\n  $ nad-onnx clean model.onnx --data train/ --ratio 0.05 --test test/ --trigger grid --target 0 --out clean.onnx --report report.json')
  .action(async (model: string, o: Record<string, unknown>) => {
    const progress = o.quiet || o.json ? undefined : progressPrinter(process.stderr);
    const taps = typeof o.taps === 'string' ? o.taps.split(',').filter(Boolean) : undefined;
    const writeReport = (r: unknown) => {
      if (typeof o.report === 'string') writeFileSync(o.report, JSON.stringify(r, null, 2) + '\n');
    };
    try {
      const r = await clean({
        model, data: o.data as string, out: o.out as string, test: o.test as string | undefined, trigger: o.trigger as string | undefined,
        target: o.target as number | undefined, poisoned: o.poisoned as string | undefined, teacher: o.teacher as string | undefined,
        method: o.method as string | undefined, teacherMethod: o.teacherMethod as string | undefined,
        teacherEpochs: o.teacherEpochs as number | undefined, epochs: o.epochs as number | undefined, betas: o.betas as number[] | undefined, p: o.p as number | undefined,
        attention: o.attention as 'sum' | 'pow' | 'mean-pow' | undefined, lr: o.lr as number | undefined, lrDropEpoch: o.lrDropEpoch as number | undefined,
        batch: o.batch as number | undefined, momentum: o.momentum as number | undefined, weightDecay: o.weightDecay as number | undefined,
        rho: o.rho as number | undefined, labelSmoothing: o.labelSmoothing as number | undefined, alpha: o.alpha as number | undefined, baseline: o.baseline as boolean,
        anpEps: o.anpEps as number | undefined, anpSteps: o.anpSteps as number | undefined, anpAlpha: o.anpAlpha as number | undefined,
        maskLr: o.maskLr as number | undefined, anpIterations: o.anpIterations as number | undefined, unlearnUntil: o.unlearnUntil as number | undefined, pruneThreshold: o.pruneThreshold as number | undefined,
        pruneBy: o.pruneBy as string | undefined, pgdEps: o.pgdEps as number | undefined, pgdSteps: o.pgdSteps as number | undefined,
        ratio: o.ratio as number | undefined, mean: o.mean as number[] | undefined, std: o.std as number[] | undefined, taps,
        seed: o.seed as number, backend: o.backend as (typeof BACKENDS)[number], device: o.device as DeviceChoice, threads: o.threads as number | undefined,
        engine: o.engine === 'auto' ? undefined : (o.engine as EngineChoice), maxAccDrop: o.maxAccDrop as number | undefined,
        maxAsr: o.maxAsr as number | undefined, scan: o.scan as boolean | undefined, maxAnomaly: o.maxAnomaly as number | undefined,
        scanEpochs: o.scanEpochs as number | undefined, scanImages: o.scanImages as number | undefined, maxMemory: o.maxMemory as number | undefined, bnRestore: o.bnRestore as boolean, html: o.html as string | undefined, checkpoint: o.checkpoint as string | undefined, onProgress: progress?.update, onLog: progress?.log,
      });
      progress?.done();
      writeReport(r);
      for (const w of r.warnings) process.stderr.write(`nad-onnx: ${w}\n`);
      process.stdout.write(o.json ? JSON.stringify(r) + '\n' : formatCleanReport(r) + '\n');
    } catch (e) {
      progress?.done();
      if (e instanceof GateRejection) {
        writeReport(e.report);
        process.stdout.write(o.json ? JSON.stringify(e.report) + '\n' : formatCleanReport(e.report) + '\n');
      }
      throw e;
    }
  });

program
  .command('scan')
  .description('look for a backdoor without knowing the attack: reverse-engineer a trigger per class (Neural Cleanse) and flag outliers')
  .argument('<model>', 'ONNX model file')
  .requiredOption('--data <path>', 'clean data: ImageFolder directory, .npz, .npy or IDX file (every class present)')
  .option('--ratio <fraction>', 'use a seeded random fraction of --data', num('--ratio'))
  .option('--max-images <n>', 'scan at most this many images of --data (seeded subset; default 1000)', num('--max-images', true))
  .option('--epochs <n>', 'epoch budget per class (default 20; stops early once the mask norm settles)', num('--epochs', true))
  .option('--threshold <index>', 'flag classes whose anomaly index is above this (default 2)', num('--threshold'))
  .option('--mean <r,g,b>', 'per-channel mean the model was trained with', numberList('--mean'))
  .option('--std <r,g,b>', 'per-channel std the model was trained with', numberList('--std'))
  .option('--seed <n>', 'random seed (image order and subset)', num('--seed', true), 0)
  .addOption(new Option('--engine <name>', 'engine for the input gradients').choices(ENGINES).default('auto'))
  .addOption(threadsOption())
  .option('--html <file>', 'also write a self-contained HTML page with each class\'s mask and pattern')
  .option('--json', 'print one JSON object (schemas/scan.schema.json)')
  .option('--quiet', 'no progress on stderr')
  .addHelpText('after', '\nExamples:\n  $ nad-onnx scan model.onnx --data clean-subset/\n  $ nad-onnx scan model.onnx --data clean.npz --json | jq .flagged')
  .action(async (model: string, o: { data: string; ratio?: number; maxImages?: number; epochs?: number; threshold?: number; mean?: number[]; std?: number[]; seed: number; engine: EngineChoice; threads?: number; html?: string; json?: boolean; quiet?: boolean }) => {
    const progress = o.quiet || o.json ? undefined : progressPrinter(process.stderr);
    const r = await scan({
      model, data: o.data, ratio: o.ratio, maxImages: o.maxImages, epochs: o.epochs, threshold: o.threshold, mean: o.mean, std: o.std, seed: o.seed,
      engine: o.engine === 'auto' ? undefined : o.engine, threads: o.threads, html: o.html, onLog: progress?.log,
    });
    progress?.done();
    process.stdout.write(o.json ? JSON.stringify(scanJson(r)) + '\n' : formatScan(r) + '\n');
  });

async function main(): Promise<void> {
  process.on('SIGINT', () => fail('interrupted', ExitCode.interrupted));
  process.on('SIGTERM', () => fail('interrupted', ExitCode.interrupted));
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) process.exit(0);
      process.exit(ExitCode.badInput); // commander already printed its one-line message
    }
    const { message, exitCode } = describeError(e);
    fail(message, exitCode);
  }
}

await main();
