import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config/config.ts';
import { parseBytes } from '../src/config/units.ts';

test('byte sizes', () => {
  assert.equal(parseBytes('4GiB'), 4 * 2 ** 30);
  assert.equal(parseBytes('512 MiB'), 512 * 2 ** 20);
  assert.equal(parseBytes('10GB'), 10e9);
  assert.equal(parseBytes('1.5k'), 1536);
  assert.equal(parseBytes('12'), 12);
  assert.equal(parseBytes('four'), null);
  assert.equal(parseBytes('4XB'), null);
});

test('defaults, environment over file, and derived public URL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latentgate-config-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ port: 5000, deviceMemory: '2GiB', maxBatch: 4 }));
  const config = loadConfig({ LATENTGATE_CONFIG: file, PORT: '6000' });
  assert.equal(config.port, 6000);
  assert.equal(config.deviceMemoryBytes, 2 * 2 ** 30);
  assert.equal(config.limits.maxBatch, 4);
  assert.equal(config.publicUrl, 'http://127.0.0.1:6000');
  assert.equal(loadConfig({}).port, 4000);
});

test('every bad value is reported at once, naming the setting and what is allowed', () => {
  assert.throws(
    () => loadConfig({ PORT: '70000', DEVICE_MEMORY: 'lots', EXECUTION_PROVIDER: 'tpu', PUBLIC_URL: 'nope' }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /PORT \(port\) is "70000"; it must be an integer from 0 to 65535/);
      assert.match(error.message, /DEVICE_MEMORY \(deviceMemory\) is "lots"/);
      assert.match(
        error.message,
        /EXECUTION_PROVIDER \(executionProvider\) is "tpu"; allowed: auto, cuda, webgpu, cpu/,
      );
      assert.match(error.message, /PUBLIC_URL/);
      return true;
    },
  );
  assert.throws(
    () => loadConfig({ DEVICE_MEMORY: '1GiB', DEVICE_HEADROOM: '2GiB' }),
    /DEVICE_HEADROOM .* must be smaller than DEVICE_MEMORY/,
  );
  assert.throws(() => loadConfig({ LATENTGATE_CONFIG: '/nonexistent/latentgate.json' }), /cannot be read/);
});

test('an unknown key in the file and a bad upstream list are named with the rest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latentgate-config-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ colour: 'red', maxBatch: 0, upstreams: [{ model: 'm', url: 'http://h/x' }] }));
  assert.throws(
    () => loadConfig({ LATENTGATE_CONFIG: file }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /colour is not a setting; allowed: host, port, publicUrl/);
      assert.match(error.message, /MAX_BATCH \(maxBatch\) is "0"; it must be an integer from 1 to 1024/);
      assert.match(error.message, /upstreams\[0\]\.operations is required when the url has no \{operation\}/);
      return true;
    },
  );
  assert.throws(
    () => loadConfig({ UPSTREAMS: '[{"model": ' }),
    /UPSTREAMS \(upstreams\) is "\[\{\\"model\\": "; it must be JSON/,
  );
  const config = loadConfig({ UPSTREAMS: '[{"model": "m", "url": "http://h/v1/vae/m/{operation}"}]', MAX_BATCH: '8' });
  assert.deepEqual(
    config.upstreams.map((u) => [u.name, u.operations, u.healthUrl]),
    [['h', ['encode', 'decode'], 'http://h/healthz']],
  );
  assert.equal(config.limits.maxBatch, 8);
});
