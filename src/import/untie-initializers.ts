/**
 * PyTorch's exporter stores equal tensors once and feeds the other uses through Identity nodes (in a freshly
 * initialised network every BatchNorm's weight and running_var are the same ones(C) tensor, its bias and
 * running_mean the same zeros(C), so one initializer ends up as a scale, a bias AND a running statistic).
 * The tensors were separate parameters in PyTorch and training must keep them separate, so each Identity
 * that forwards a float initializer becomes an initializer of its own, named by the Identity's output
 * (PyTorch's parameter name); the exporter writes it so (write-model.ts) and drops the Identity node.
 */
import type { LoadedModel } from './loaded-model.js';

/** Mutates the decoded model: drops the forwarding Identity nodes, adds their outputs as initializers. */
export function untieForwardedInitializers(model: LoadedModel): void {
  const g = model.proto.graph!;
  const outputs = new Set((g.output ?? []).map((o) => o.name ?? ''));
  const keep = [];
  for (const n of g.node ?? []) {
    const src = n.opType === 'Identity' && (!n.domain || n.domain === 'ai.onnx') ? n.input?.[0] : undefined;
    const out = n.output?.[0];
    // Chains resolve in file order only if the inner Identity came first; a later one stays a node.
    const root = src !== undefined ? (model.untied.get(src) ?? src) : undefined;
    const value = root !== undefined ? model.initializers.get(root) : undefined;
    if (value?.dtype === 'float32' && out && n.output!.length === 1 && !outputs.has(out) && !model.initializers.has(out)) {
      model.initializers.set(out, value); // nothing writes to decoded initializers: the values can be shared
      model.untied.set(out, root!);
      continue;
    }
    keep.push(n);
  }
  g.node = keep;
}
