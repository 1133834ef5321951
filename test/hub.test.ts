/**
 * Models from the Hugging Face Hub (src/hub/), against a loopback fake of its HTTP API
 * (test/support/fake-hub.ts); no test reaches the real Hub. The repository served is taef2 from
 * ../shared, written in diffusers' AutoencoderTiny layout as the Hub's taesd repositories are.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import type { GatewayError } from '../src/errors.ts';
import { blobLockPath } from '../src/hub/lock.ts';
import { findPreset } from '../src/hub/presets.ts';
import { SILENT_PROGRESS, StderrProgress } from '../src/hub/progress.ts';
import { pull } from '../src/hub/pull.ts';
import { loadModels } from '../src/models/load.ts';
import { readSafetensors, serializeSafetensors, type TensorToWrite } from '../src/tensors/safetensors.ts';
import { runCli } from './support/cli.ts';
import { type FakeHub, startFakeHub } from './support/fake-hub.ts';
import { encodePng, PNG_COLOR } from './support/image-files.ts';
import { MODELS_DIR } from './support/paths.ts';
import { startGateway } from './support/server.ts';

/** The FLUX.2 tiny autoencoder's repository holds one file with diffusers' tensor names (its model card). */
const WEIGHTS = 'taef2.safetensors';
const DIFFUSERS_WEIGHTS = 'diffusion_pytorch_model.safetensors';
const COMMIT = randomBytes(20).toString('hex');
const CONFIG_JSON = new TextEncoder().encode(
  JSON.stringify({ _class_name: 'AutoencoderTiny', _diffusers_version: '0.31.0', latent_channels: 32 }),
);

let root: string;
let weights: Uint8Array;
let hub: FakeHub;

/** taef2's two files as one diffusers file: encoder.layers.N, decoder.layers.(N-1). */
async function diffusersTaef2(): Promise<Uint8Array> {
  const renamed: Record<string, TensorToWrite> = {};
  for (const part of ['encoder', 'decoder'] as const) {
    const { tensors } = await readSafetensors(join(MODELS_DIR, 'taef2', `${part}.safetensors`));
    for (const [name, t] of tensors) {
      const [index, ...rest] = name.split('.');
      renamed[`${part}.layers.${Number(index) - (part === 'decoder' ? 1 : 0)}.${rest.join('.')}`] = {
        dtype: t.dtype,
        shape: t.shape,
        data: t.bytes,
      };
    }
  }
  return serializeSafetensors(renamed);
}

/** A fresh cache and data folder, and the configuration that points at them and the fake Hub. */
function setting(env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(root, 'case-'));
  const vars = {
    HF_HUB_CACHE: join(dir, 'hub'),
    DATA_DIR: join(dir, 'data'),
    MODELS_DIR: join(dir, 'models'),
    HF_ENDPOINT: hub.url,
    HF_TOKEN: '',
    HF_HUB_OFFLINE: '',
    MODELS: '',
    ...env,
  };
  const config = loadConfig(vars);
  return { dir, vars, config, options: { hub: config.hub, dataDir: config.dataDir, progress: SILENT_PROGRESS } };
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const gitOid = (bytes: Uint8Array) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
const repoDir = (cache: string, repo: string) => join(cache, `models--${repo.replace('/', '--')}`);

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'latentgate-hub-'));
  weights = await diffusersTaef2();
  const files = {
    'README.md': new TextEncoder().encode('# TAEF2'),
    [WEIGHTS]: weights,
    'taef2_encoder.pth': new Uint8Array(64),
  };
  const diffusersFiles = { 'config.json': CONFIG_JSON, [DIFFUSERS_WEIGHTS]: weights };
  hub = await startFakeHub({
    'madebyollin/taef2': { commit: COMMIT, files },
    // At the commit the taesd preset pins, but with other bytes than the ones it pins.
    'madebyollin/taesd': { commit: findPreset('taesd')!.commit!, files: diffusersFiles },
    'acme/gated-tae': { commit: COMMIT, files: diffusersFiles, token: 'hf_owner_token' },
    'acme/bundle': {
      commit: COMMIT,
      files: {
        'README.md': new TextEncoder().encode('# bundle'),
        'tae/.gitkeep': new Uint8Array(0),
        'tae/config.json': CONFIG_JSON,
        [`tae/${DIFFUSERS_WEIGHTS}`]: weights,
      },
    },
  });
});
after(async () => {
  await hub?.close();
  rmSync(root, { recursive: true, force: true });
});

test('a pull fills the Hub cache layout (blobs, snapshot symlinks, refs) and the gateway serves it', async () => {
  const { config, options } = setting();
  const before = hub.requests.length;
  const result = await pull({ spec: 'taef2' }, options);
  const repo = repoDir(config.hub.cacheDir, 'madebyollin/taef2');
  assert.equal(result.record.commit, COMMIT);
  assert.equal(readFileSync(join(repo, 'refs', 'main'), 'utf8'), COMMIT);
  const link = join(repo, 'snapshots', COMMIT, WEIGHTS);
  assert.ok(lstatSync(link).isSymbolicLink());
  const sha = sha256(weights);
  assert.equal(readlinkSync(link), join('..', '..', 'blobs', sha));
  assert.deepEqual(readdirSync(join(repo, 'snapshots', COMMIT)), [WEIGHTS], 'the preset pulls its file only');
  assert.ok(!readdirSync(join(repo, 'blobs')).some((b) => b.endsWith('.incomplete')));
  // The client's calls: model info, the tree, the resolve redirect, the CDN.
  const calls = hub.requests.slice(before).map((r) => r.url.split('?')[0]);
  assert.ok(calls.includes('/api/models/madebyollin/taef2/revision/main'), calls.join('\n'));
  assert.ok(calls.some((c) => c.startsWith('/api/models/madebyollin/taef2/tree/')));
  assert.ok(calls.includes(`/madebyollin/taef2/resolve/${COMMIT}/${WEIGHTS}`));
  assert.ok(calls.includes(`/cdn/${sha}`));
  assert.ok(!calls.some((c) => c.endsWith('.pth') || c.endsWith('.md')), 'a preset pulls its files only');

  const { registry, hub: scan } = await loadModels(config);
  const model = registry.find('taef2');
  assert.ok(model, JSON.stringify(registry.problems));
  assert.equal(model.latentChannels, 32);
  assert.match(model.origin ?? '', /^madebyollin\/taef2@/);
  assert.deepEqual(scan.skipped, []);

  const again = hub.requests.length;
  assert.equal((await pull({ spec: 'taef2' }, options)).fetched, false);
  assert.ok(!hub.requests.slice(again).some((r) => r.url.startsWith('/cdn/')), 'nothing is downloaded twice');
});

test('an interrupted pull resumes with a Range request and is not served meanwhile', async () => {
  const { config, options } = setting();
  hub.cutAfter.set(WEIGHTS, 1_000_000);
  await assert.rejects(
    pull({ spec: 'taef2' }, options),
    /safetensors: the download stopped at \d+ of \d+ bytes .*; pull again to resume it/,
  );
  const blobs = join(repoDir(config.hub.cacheDir, 'madebyollin/taef2'), 'blobs');
  const partial = readdirSync(blobs).find((b) => b.endsWith('.incomplete'));
  assert.ok(partial, 'the partial file is kept beside the blobs');
  const have = lstatSync(join(blobs, partial)).size;
  assert.ok(have > 0 && have < weights.length, `${have} bytes kept`);
  assert.ok(!existsSync(join(repoDir(config.hub.cacheDir, 'madebyollin/taef2'), 'snapshots', COMMIT, WEIGHTS)));
  assert.equal((await loadModels(config)).registry.find('taef2'), undefined);

  const before = hub.requests.length;
  const result = await pull({ spec: 'taef2' }, options);
  const ranged = hub.requests.slice(before).filter((r) => r.url.startsWith('/cdn/') && r.range !== 'bytes=0-0');
  assert.deepEqual(
    ranged.map((r) => r.range),
    [`bytes=${have}-${weights.length - 1}`],
  );
  assert.deepEqual(readFileSync(join(result.dir, WEIGHTS)), Buffer.from(weights));
  assert.ok((await loadModels(config)).registry.find('taef2'));
});

test('concurrent pulls of one blob download it once; a lock left by a dead process is taken over', async () => {
  const { config, options } = setting();
  const before = hub.requests.length;
  const [a, b] = await Promise.all([pull({ spec: 'taef2' }, options), pull({ spec: 'taef2' }, options)]);
  assert.equal(a.dir, b.dir);
  const full = hub.requests.slice(before).filter((r) => r.url.startsWith('/cdn/') && r.range !== 'bytes=0-0');
  assert.equal(full.length, 1, JSON.stringify(full));

  const other = setting();
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  const lock = blobLockPath(other.config.hub.cacheDir, 'madebyollin/taef2', sha256(weights));
  mkdirSync(join(lock, '..'), { recursive: true });
  writeFileSync(lock, JSON.stringify({ pid: dead, host: hostname() }));
  await pull({ spec: 'taef2' }, other.options);
  assert.ok(!existsSync(lock));
  assert.ok((await loadModels(config)).registry.find('taef2'));
});

test('a file that does not match the Hub sha256 is refused, not kept and not served', async () => {
  const { config, options } = setting();
  hub.corrupt.add(WEIGHTS);
  try {
    await assert.rejects(pull({ spec: 'taef2' }, options), (error: GatewayError) => {
      assert.match(error.message, /taef2\.safetensors failed verification: .* sha256 /);
      return true;
    });
  } finally {
    hub.corrupt.delete(WEIGHTS);
  }
  const repo = repoDir(config.hub.cacheDir, 'madebyollin/taef2');
  assert.deepEqual(
    readdirSync(join(repo, 'blobs')).filter((b) => b.length === 64 || b.endsWith('.incomplete')),
    [],
  );
  assert.ok(!existsSync(join(repo, 'snapshots', COMMIT, WEIGHTS)));
  assert.ok(!existsSync(join(repo, 'refs', 'main')));
  const { registry } = await loadModels(config);
  assert.deepEqual(registry.list(), []);
});

test('a gated repository: 401 without HF_TOKEN and 403 with a token lacking access say what to do', async () => {
  const anonymous = setting();
  const cli = await runCli(['models', 'pull', 'acme/gated-tae'], anonymous.dir, anonymous.vars);
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /acme\/gated-tae is gated or private \(401\): set HF_TOKEN to a Hugging Face token/);
  assert.match(cli.stderr, new RegExp(`terms at ${hub.url}/acme/gated-tae`));

  const other = setting({ HF_TOKEN: 'hf_someone_else' });
  await assert.rejects(pull({ spec: 'acme/gated-tae' }, other.options), (error: GatewayError) => {
    assert.equal(error.code, 'FORBIDDEN');
    assert.match(
      error.message,
      /gated \(403\): the account of HF_TOKEN has no access yet; accept the repository's terms/,
    );
    return true;
  });
  assert.ok(!existsSync(join(repoDir(other.config.hub.cacheDir, 'acme/gated-tae'), 'snapshots')));

  const owner = setting({ HF_TOKEN: 'hf_owner_token' });
  const before = hub.requests.length;
  const result = await pull({ spec: 'acme/gated-tae', name: 'gated' }, owner.options);
  assert.equal(result.record.name, 'gated');
  assert.ok(hub.requests.slice(before).every((r) => r.authorization === 'Bearer hf_owner_token'));
  assert.ok((await loadModels(owner.config)).registry.find('gated'));
});

test('HF_HUB_OFFLINE=1: list and pull use the cache only; rm removes the snapshot and its blobs', async () => {
  const { config, options, vars, dir } = setting();
  await pull({ spec: 'taef2' }, options);
  const offline = { ...vars, HF_HUB_OFFLINE: '1' };
  const before = hub.requests.length;
  const listed = await runCli(['models', 'list'], dir, offline);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /^taef2 +encode,decode +madebyollin\/taef2@\w{12} \(Hub cache\)/m);
  const pulled = await runCli(['models', 'pull', 'taef2'], dir, offline);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.match(pulled.stdout, /already in/);
  const missing = await runCli(['models', 'pull', 'taesd'], dir, offline);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /HF_HUB_OFFLINE is set and madebyollin\/taesd@614f76814bbe\w{28} is not in the cache/);
  assert.equal(hub.requests.length, before, 'offline means no request at all');

  const removed = await runCli(['models', 'rm', 'taef2'], dir, offline);
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stdout, /removed taef2 \(madebyollin\/taef2@/);
  assert.ok(!existsSync(repoDir(config.hub.cacheDir, 'madebyollin/taef2')));
  assert.deepEqual(JSON.parse(readFileSync(join(config.dataDir, 'hub-models.json'), 'utf8')), []);
});

test('a cache written by Python (snapshot symlinks into blobs) is served by a real gateway, offline', async () => {
  const { vars } = setting();
  const cache = vars.HF_HUB_CACHE;
  // huggingface_hub's layout, written by hand: a served TAE, a broken one, and a repository of another kind.
  const write = (repo: string, files: Record<string, Uint8Array>) => {
    const base = repoDir(cache, repo);
    mkdirSync(join(base, 'blobs'), { recursive: true });
    mkdirSync(join(base, 'snapshots', COMMIT), { recursive: true });
    mkdirSync(join(base, 'refs'), { recursive: true });
    writeFileSync(join(base, 'refs', 'main'), COMMIT);
    for (const [path, bytes] of Object.entries(files)) {
      const etag = path.endsWith('.safetensors') ? sha256(bytes) : gitOid(bytes);
      writeFileSync(join(base, 'blobs', etag), bytes);
      symlinkSync(join('..', '..', 'blobs', etag), join(base, 'snapshots', COMMIT, path));
    }
  };
  write('madebyollin/taef2', { [WEIGHTS]: weights });
  write('someone/broken-tae', { 'config.json': CONFIG_JSON, [DIFFUSERS_WEIGHTS]: weights.subarray(0, 4096) });
  write('bert/tiny-bert', { 'config.json': new TextEncoder().encode('{"model_type":"bert"}') });
  mkdirSync(vars.MODELS_DIR);
  const requests = hub.requests.length;
  const gateway = await startGateway({ ...vars, HF_HUB_OFFLINE: '1', MODELS: 'taef2', DEVICE_MEMORY: '2GiB' });
  try {
    const output = gateway.output();
    assert.match(
      output,
      /Hub cache [^"]*: serving taef2 \(madebyollin\/taef2@\w{12} \(Hub cache\)\); not in a layout latentgate serves: bert\/tiny-bert/,
    );
    assert.match(output, /model broken-tae not loaded \([^)]*\): /);
    assert.match(output, /MODELS: taef2 is in the Hub cache/);
    const png = encodePng({
      width: 32,
      height: 24,
      colorType: PNG_COLOR.rgb,
      bitDepth: 8,
      samples: new Uint8Array(32 * 24 * 3).fill(128),
    });
    const answer = await gateway.graphql(
      'mutation($input: EncodeInput!) { encode(input: $input) { latent { shape } } }',
      { input: { model: 'taef2', image: { base64: png.toString('base64') } } },
    );
    assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
    assert.deepEqual(answer.data?.encode.latent.shape, [1, 32, 3, 4]);
    assert.equal(hub.requests.length, requests, 'offline: the gateway made no request to the Hub');
  } finally {
    await gateway.stop();
  }
});

test('--subfolder pulls one folder and serves it under --name; a clashing cached repo gets its full id', async () => {
  const { config, options } = setting();
  const result = await pull({ spec: 'acme/bundle@main', subfolder: 'tae', name: 'bundled' }, options);
  assert.deepEqual(readdirSync(join(result.dir)).sort(), ['.gitkeep', 'config.json', DIFFUSERS_WEIGHTS]);
  assert.ok(!existsSync(join(result.dir, '..', 'README.md')), 'only the subfolder is pulled');
  // A second repository named taef2 beside madebyollin's: both are served, under their full names.
  await pull({ spec: 'madebyollin/taef2' }, options);
  const copy = repoDir(config.hub.cacheDir, 'mirror/taef2');
  mkdirSync(join(copy, 'snapshots'), { recursive: true });
  symlinkSync(
    join(repoDir(config.hub.cacheDir, 'madebyollin/taef2'), 'snapshots', COMMIT),
    join(copy, 'snapshots', COMMIT),
  );
  const { registry } = await loadModels(config);
  assert.deepEqual(
    registry
      .list()
      // The pulled one keeps the name it was pulled under; the other takes its full id.
      .map((m) => m.id)
      .sort(),
    ['bundled', 'mirror/taef2', 'taef2'],
  );
  assert.equal(registry.find('bundled')?.path, result.dir);
});

test('settings: the cache folder in huggingface_hub order, HF_HUB_OFFLINE values, MODELS entries', () => {
  const base = { HF_HUB_CACHE: '', HF_HOME: '', XDG_CACHE_HOME: '' };
  assert.equal(loadConfig({ ...base, HF_HUB_CACHE: '/a/hub', HF_HOME: '/b' }).hub.cacheDir, '/a/hub');
  assert.equal(loadConfig({ ...base, HF_HOME: '/b', XDG_CACHE_HOME: '/c' }).hub.cacheDir, '/b/hub');
  assert.equal(loadConfig({ ...base, XDG_CACHE_HOME: '/c' }).hub.cacheDir, '/c/huggingface/hub');
  assert.match(loadConfig(base).hub.cacheDir, /\/\.cache\/huggingface\/hub$/);
  assert.equal(loadConfig({ HF_HUB_OFFLINE: '1' }).hub.offline, true);
  assert.equal(loadConfig({ HF_HUB_OFFLINE: 'ON' }).hub.offline, true);
  assert.equal(loadConfig({ HF_HUB_OFFLINE: '0' }).hub.offline, false);
  assert.throws(
    () => loadConfig({ HF_HUB_OFFLINE: 'maybe' }),
    /HF_HUB_OFFLINE \(hfHubOffline\) is "maybe"; it must be 1 or 0/,
  );
  assert.deepEqual(loadConfig({ MODELS: 'taesd, acme/x@v1.0' }).hub.pullAtStart, ['taesd', 'acme/x@v1.0']);
  assert.throws(() => loadConfig({ MODELS: 'taesd,a b' }), /MODELS \(models\).*"a b": each must be a preset/);
  assert.equal(loadConfig({ HF_ENDPOINT: 'https://mirror.example/' }).hub.endpoint, 'https://mirror.example');
  assert.equal(String(loadConfig({ HF_TOKEN: 'hf_x' }).hub.token), '[secret]');
});

test('the progress bar redraws one line on a terminal and writes a line per file otherwise', () => {
  const written = (tty: boolean) => {
    const chunks: string[] = [];
    const stream = Object.assign(
      new Writable({
        write: (c, _e, done) => {
          chunks.push(String(c));
          done();
        },
      }),
      {
        isTTY: tty,
      },
    );
    const bar = new StderrProgress(stream);
    bar.start('taesd', 2048);
    bar.advance('w.safetensors', 1024);
    bar.fileDone('w.safetensors', 'downloaded');
    bar.finish('done');
    return chunks.join('');
  };
  const erase = '\r\x1b[2K';
  assert.equal(
    written(true),
    `${erase}taesd [${'#'.repeat(12)}${'-'.repeat(12)}]  50% 1.00 KiB / 2.00 KiB w.safetensors${erase}taesd done\n`,
  );
  assert.equal(written(false), 'taesd w.safetensors: downloaded\ntaesd done\n');
});

test('MODELS pulls at start what the cache lacks; one the Hub lacks is reported and the gateway still starts', async () => {
  const { vars } = setting();
  const gateway = await startGateway({ ...vars, MODELS: 'taef2,acme/nope', DEVICE_MEMORY: '2GiB', LOG_LEVEL: 'info' });
  try {
    const output = gateway.output();
    assert.match(output, /MODELS: pulled taef2 \(madebyollin\/taef2@\w{12}\) into /);
    assert.match(output, /MODELS: acme\/nope not pulled: acme\/nope \(or that revision or file\) is not on /);
    assert.match(output, /listening on [^;]*; models: taef2;/);
  } finally {
    await gateway.stop();
  }
});

test('with no model anywhere, the start line says how to get one', async () => {
  const { vars } = setting();
  const gateway = await startGateway({ ...vars, HF_HUB_OFFLINE: '1', DEVICE_MEMORY: '2GiB' });
  try {
    assert.match(
      gateway.output(),
      /models: none \(get one: `latentgate models pull taesd`, or start with MODELS=taesd/,
    );
  } finally {
    await gateway.stop();
  }
});

test('a pinned preset is pulled at its commit, and weights other than the pinned ones are refused', async () => {
  const { config, options } = setting();
  const preset = findPreset('taesd')!;
  const before = hub.requests.length;
  await assert.rejects(pull({ spec: 'taesd' }, options), (error: GatewayError) => {
    assert.equal(error.code, 'UPSTREAM_FAILED');
    assert.match(error.message, new RegExp(`preset taesd pins ${preset.files![DIFFUSERS_WEIGHTS]}`));
    return true;
  });
  const calls = hub.requests.slice(before).map((r) => r.url.split('?')[0]);
  assert.ok(calls.includes(`/api/models/madebyollin/taesd/revision/${preset.commit}`), calls.join('\n'));
  assert.ok(!calls.some((c) => c.includes('/resolve/')), 'nothing downloaded');
  assert.ok(
    !existsSync(repoDir(config.hub.cacheDir, 'madebyollin/taesd')) ||
      !existsSync(join(repoDir(config.hub.cacheDir, 'madebyollin/taesd'), 'snapshots')),
  );
});
