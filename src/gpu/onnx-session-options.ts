/** The options every onnxruntime session is created with (the worker's, and the benchmark's bare runs). */
import type { InferenceSession } from 'onnxruntime-node';
import type { WorkerInit } from './onnx-worker-protocol.js';

export function sessionOptions(init: WorkerInit): InferenceSession.SessionOptions {
  return {
    executionProviders: [init.provider],
    graphOptimizationLevel: 'all',
    // Memory pattern planning makes every run after the first allocate one new block of the
    // planned size next to the arena chunks the first run left free: measured +200 MiB for
    // taef2 at 512x512 on CPU, and no faster. Off, a session's peak stays at its first run's,
    // which is what the memory estimates assume (src/routing/profiles.ts).
    ...(init.provider === 'cpu' ? { enableMemPattern: false } : {}),
    // The CPU arena keeps every run's peak for the session's life: one 588-byte 65536x8 PNG left taef2's
    // encoder holding +565 MiB of RSS for good (each session keeps its own). Off, that memory goes back
    // after the run (+60 MiB, the session itself) and the device budget bounds RSS; 768² runs were no slower.
    ...(init.provider === 'cpu' ? { enableCpuMemArena: false } : {}),
    // Idle intra-op threads spin-wait for the next op by default, taking the cores the gateway needs
    // for decoding, HTTP and GraphQL. Off, on 16 cores: a 512² taef2 run took 122-131 ms instead of
    // 145-148 ms at half the CPU time, and the whole request 152-159 ms instead of 169 ms.
    ...(init.provider === 'cpu' ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
    ...(init.intraOpThreads > 0 ? { intraOpNumThreads: init.intraOpThreads } : {}),
  };
}
