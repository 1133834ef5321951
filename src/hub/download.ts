/**
 * One file of a pull into the cache's blobs/, resumable and verified. @huggingface/hub's
 * downloadFileToCacheDir restarts an interrupted file from zero, checks no hash, and links the file into
 * snapshots/ unverified; so this keeps its HTTP (fileDownloadInfo: the resolve redirect and the
 * X-Linked-Etag / X-Linked-Size headers; downloadFile's blob, whose slice is a Range request) and adds:
 * bytes go to blobs/ETAG.incomplete, a later pull continues it from its length, and the whole file must
 * hash to the Hub's sha256 (git's blob sha1 for a small, non-LFS file) before it is renamed to blobs/ETAG.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import { mkdir, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { downloadFile, fileDownloadInfo } from '@huggingface/hub';
import { GatewayError } from '../errors.js';
import type { PullProgress } from './progress.js';

/** A file as the Hub's tree listing describes it. */
export interface RemoteFile {
  path: string;
  size: number;
  /** sha256 of an LFS file's content; null for a file kept in git. */
  sha256: string | null;
  /** git's blob oid (sha1), the etag of a non-LFS file. */
  gitOid: string;
}

export interface HubAccess {
  hubUrl: string;
  accessToken?: string;
  fetch?: typeof fetch;
}

/** The blob name huggingface_hub gives the file: its etag. */
export function etagOf(file: RemoteFile): string {
  return file.sha256 ?? file.gitOid;
}

/** An etag header as sent (`"abc"`, `W/"abc"`) without its quotes. */
function bareEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

/** The hash the file is checked against: sha256 of the content (LFS), or git's sha1 of `blob SIZE\0content`. */
function newHash(file: RemoteFile): Hash {
  if (file.sha256) return createHash('sha256');
  return createHash('sha1').update(`blob ${file.size}\0`);
}

/** Downloads `file` of `repo` at `commit` to `blob` (its final path); resumes `blob.incomplete` when present. */
export async function downloadBlob(
  access: HubAccess,
  repo: string,
  commit: string,
  file: RemoteFile,
  blob: string,
  progress: PullProgress,
): Promise<'downloaded' | 'resumed'> {
  const incomplete = `${blob}.incomplete`;
  await mkdir(dirname(blob), { recursive: true });
  if (!existsSync(incomplete)) await writeFile(incomplete, '');
  let offset = statSync(incomplete).size;
  if (offset > file.size) {
    await truncate(incomplete, 0);
    offset = 0;
  }
  const hash = newHash(file);
  if (offset > 0) {
    // The bytes already here count toward the hash (and the bar), so only the rest is fetched.
    await pipeline(createReadStream(incomplete), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) hash.update(chunk);
    });
    progress.advance(file.path, offset);
  }
  // An empty file needs no request (a Range probe of it is unsatisfiable); its git oid is still checked.
  if (file.size > 0) {
    const info = await fileDownloadInfo({ repo, path: file.path, revision: commit, ...access });
    if (!info)
      throw new GatewayError('NOT_FOUND', `${repo}@${commit} has no file ${file.path}`, { repo, path: file.path });
    // A CDN behind the redirect may send an etag of its own (an MD5); only a hash of the listing's kind is compared.
    const expected = etagOf(file);
    const sent = bareEtag(info.etag);
    if (info.size !== file.size || (/^[0-9a-f]+$/.test(sent) && sent.length === expected.length && sent !== expected))
      throw new GatewayError(
        'UPSTREAM_FAILED',
        `${repo}/${file.path}: the Hub's listing (etag ${expected}, ${file.size} bytes) and its file ` +
          `(etag ${sent}, ${info.size} bytes) disagree; not downloaded`,
        { repo, path: file.path },
      );
    if (offset < file.size) {
      const remote = await downloadFile({ repo, path: file.path, revision: commit, ...access, downloadInfo: info });
      if (!remote) throw new GatewayError('NOT_FOUND', `${repo}@${commit} has no file ${file.path}`, { repo });
      const part = offset > 0 ? remote.slice(offset) : remote;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          progress.advance(file.path, chunk.length);
          done(null, chunk);
        },
      });
      try {
        await pipeline(
          Readable.fromWeb(part.stream() as import('node:stream/web').ReadableStream),
          counter,
          createWriteStream(incomplete, { flags: 'a' }),
        );
      } catch (error) {
        const kept = existsSync(incomplete) ? statSync(incomplete).size : 0;
        throw new GatewayError(
          'UPSTREAM_FAILED',
          `${repo}/${file.path}: the download stopped at ${kept} of ${file.size} bytes ` +
            `(${error instanceof Error ? error.message : String(error)}); pull again to resume it`,
          { repo, path: file.path, bytes: kept },
        );
      }
    }
  }
  const size = statSync(incomplete).size;
  const digest = hash.digest('hex');
  if (size !== file.size || digest !== (file.sha256 ?? file.gitOid)) {
    // Refused and removed: a next pull starts this file over rather than resuming wrong bytes.
    await rm(incomplete, { force: true });
    throw new GatewayError(
      'UPSTREAM_FAILED',
      `${repo}/${file.path} failed verification: got ${size} bytes with ${file.sha256 ? 'sha256' : 'git sha1'} ` +
        `${digest}, the Hub lists ${file.size} bytes with ${file.sha256 ?? file.gitOid}; nothing was kept, pull again`,
      { repo, path: file.path, expected: file.sha256 ?? file.gitOid, actual: digest },
    );
  }
  await rename(incomplete, blob);
  return offset > 0 ? 'resumed' : 'downloaded';
}
