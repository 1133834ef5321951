/** Which of a repository's files a pull fetches. */
import type { ListFileEntry } from '@huggingface/hub';
import type { RemoteFile } from './download.js';

/** Weights in formats latentgate does not load (PyTorch pickles, Flax, GGUF): skipped, they are often the bulk. */
const UNUSED = /\.(bin|pt|pth|ckpt|msgpack|h5|gguf|tflite|mlmodel|mlpackage)$/i;

function toRemoteFile(entry: ListFileEntry): RemoteFile {
  return {
    path: entry.path,
    size: entry.lfs?.size ?? entry.size,
    sha256: entry.lfs?.oid ?? null,
    gitOid: entry.oid ?? '',
  };
}

/** A preset's files exactly (each must exist); else every file under `subfolder` but unused weights. */
export function selectFiles(
  entries: ListFileEntry[],
  wanted: readonly string[] | null,
  subfolder: string | null,
): { files: RemoteFile[]; missing: string[] } {
  const files = entries.filter((e) => e.type === 'file').map(toRemoteFile);
  if (wanted) {
    const byPath = new Map(files.map((f) => [f.path, f]));
    const prefixed = wanted.map((w) => (subfolder ? `${subfolder}/${w}` : w));
    return {
      files: prefixed.flatMap((p) => byPath.get(p) ?? []),
      missing: prefixed.filter((p) => !byPath.has(p)),
    };
  }
  return { files: files.filter((f) => !UNUSED.test(f.path)), missing: [] };
}
