#!/usr/bin/env node
/**
 * Child process that creates an onnxruntime session from model bytes on stdin and exits 0. Used to load
 * untrusted models once in isolation: if onnxruntime's native code crashes on a hostile file, it is this
 * process that dies, and the caller reports exit code 2 instead of crashing.
 */
import * as ort from 'onnxruntime-node';

const chunks: Buffer[] = [];
process.stdin.on('data', (c: Buffer) => chunks.push(c));
process.stdin.on('end', async () => {
  try {
    const s = await ort.InferenceSession.create(new Uint8Array(Buffer.concat(chunks)), { logSeverityLevel: 4 });
    await s.release();
    process.exit(0);
  } catch (e) {
    process.stderr.write(((e as Error).message ?? String(e)).split('\n')[0]!);
    process.exit(1);
  }
});
