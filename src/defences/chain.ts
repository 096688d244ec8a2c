/**
 * A chain of defences (`--method anp+ft-sam`): each stage runs on the model the previous one made, written
 * into the original graph and read back, with its BatchNorms restored again. Each stage takes its own
 * defaults and the method flags it owns; the options every method reads (--epochs, --lr, --batch, ...) go
 * to the last stage, the one that recovers. The pipeline measures every stage but the last as an
 * intermediate model.
 */
import { modelBytes } from '../export/write-model.js';
import { modelFromBytes } from '../import/load-model.js';
import type { Defence, DefenceContext, DefenceResult, Intermediate } from './defence.js';
import { COMMON_OPTIONS, type MethodOptions } from './method-options.js';
import { DEFAULT_LR_RETRIES } from '../training/phase.js';

export const CHAIN_SEPARATOR = '+';

interface ChainOptions {
  stages: { def: Defence; resolved: unknown }[];
}

/** The chain `name` of the given stages (at least two). */
export function chainDefence(name: string, stages: Defence[]): Defence<ChainOptions> {
  const owned = [...new Set(stages.flatMap((d) => d.options))];
  const chain: Defence<ChainOptions> = {
    name,
    summary: `${stages.map((d) => d.name).join(', then ')}, each on the model the one before made`,
    options: owned,
    resolve(o: MethodOptions): ChainOptions {
      return {
        stages: stages.map((def, i) => {
          // Each stage sees the flags it owns; the last also the common ones.
          const own: MethodOptions = {};
          const keys = i === stages.length - 1 ? [...def.options, ...COMMON_OPTIONS.filter((k) => k !== 'method')] : def.options;
          for (const key of keys) (own as Record<string, unknown>)[key] = o[key];
          return { def, resolved: def.resolve(own) };
        }),
      };
    },
    describe: (r) => {
      const stages = r.stages.map((s) => ({ method: s.def.name, ...s.def.describe(s.resolved) }));
      // The largest batch of any stage, for the memory plan.
      return { batch: Math.max(...stages.map((s) => (s as { batch?: number }).batch ?? 0)), stages };
    },
    checkModel(r, model, taps) {
      for (const s of r.stages) s.def.checkModel?.(s.resolved, model, taps);
    },
    provenance: stages.map((d) => d.provenance).join(', then '),
    stateFactor: (r) => Math.max(...r.stages.map((s) => s.def.stateFactor(s.resolved))),
    frozenModels: Math.max(...stages.map((d) => d.frozenModels ?? 0)),
    inputGradientGraphs: Math.max(...stages.map((d) => d.inputGradientGraphs ?? 0)),
    masksBatchNorm: stages.some((d) => d.masksBatchNorm),
    ...(stages.some((d) => d.onnxruntimeOnly) ? { onnxruntimeOnly: stages.filter((d) => d.onnxruntimeOnly).map((d) => `${d.onnxruntimeOnly} (${d.name})`).join(', ') } : {}),
    async train(ctx, r) {
      return chain.run!(ctx, r);
    },
    async run(ctx: DefenceContext, r: ChainOptions): Promise<DefenceResult> {
      let source = ctx.source;
      const intermediates: Intermediate[] = [];
      const losses: DefenceResult['losses'] = {};
      const engines: DefenceResult['engines'] = {};
      let result: DefenceResult | undefined;
      let restored = 0;
      const parameters: Record<string, unknown>[] = [];
      for (const [i, { def, resolved }] of r.stages.entries()) {
        // --lr goes to the last stage only: the stages before run at their defaults, which may be lowered.
        const lrRetries = i < r.stages.length - 1 ? DEFAULT_LR_RETRIES : ctx.lrRetries;
        const stageCtx: DefenceContext = { ...ctx, source, method: def.name, checkpointScope: `${ctx.checkpointScope ?? ''}stage${i + 1}/`, lrRetries };
        ctx.log(`stage ${i + 1} of ${r.stages.length}: ${def.name}: ${def.summary}`);
        const slot = { name: phaseName(def.name, i, r.stages), seedOffset: 2 + 10 * i };
        const out: DefenceResult = def.run ? await def.run(stageCtx, resolved) : { ...(await def.train(stageCtx, resolved, slot)), parameters: def.describe(resolved) };
        if (i === 0) restored = out.restored;
        parameters.push({ method: def.name, ...out.parameters });
        for (const [phase, l] of Object.entries(out.losses)) losses[phase in losses ? `${phase}#${i + 1}` : phase] = l;
        for (const [phase, e] of Object.entries(out.engines)) engines[phase in engines ? `${phase}#${i + 1}` : phase] = e;
        if (i < r.stages.length - 1) {
          out.store.writeTo(out.model);
          const weights = out.model.exportWeights();
          out.model.dispose();
          const bytes = modelBytes(ctx.source, weights);
          const taps = ctx.taps.map((t) => t.name);
          intermediates.push({ label: `after ${def.name} (stage ${i + 1})`, method: def.name, bytes, tapBytes: modelBytes(ctx.source, weights, undefined, taps), taps });
          source = modelFromBytes(bytes, `${ctx.source.path} after ${def.name}`);
        }
        result = out;
      }
      return { ...result!, losses, engines, restored, parameters: { ...chain.describe(r), stages: parameters }, stages: intermediates };
    },
  };
  return chain;
}

/** A stage's phase name: the method's, numbered when the chain repeats it. */
function phaseName(method: string, i: number, stages: { def: Defence }[]): string {
  return stages.filter((s) => s.def.name === method).length > 1 ? `${method}#${i + 1}` : method;
}
