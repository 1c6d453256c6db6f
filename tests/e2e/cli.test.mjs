// End-to-end round trip of the built `layercache` CLI (./bin/layercache, from `make build`)
// against a running server, as a CI script would use it: plan, push, plan again, pull.
// Needs CACHESERVICE_ADDR (host:port of a running server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const layercache = fileURLToPath(new URL('../../bin/layercache', import.meta.url));
if (!process.env.CACHESERVICE_ADDR) throw new Error('CACHESERVICE_ADDR is not set: start the server first');
const namespace = `e2e/cli-${Date.now()}`;

function run(...args) {
  const result = spawnSync(layercache, args, { encoding: 'utf8', env: { ...process.env, CACHESERVICE_NAMESPACE: namespace } });
  if (result.error) throw result.error;
  return result;
}

test('plan, push, plan again and pull with the built CLI', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-e2e-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const context = join(dir, 'context');
  mkdirSync(join(context, 'app'), { recursive: true });
  writeFileSync(join(context, 'app', 'main.py'), 'print("hello")\n');
  writeFileSync(join(context, 'Dockerfile'),
    'FROM python@sha256:' + 'cd'.repeat(32) + '\nCOPY app/ /app/\nENV MODE=prod\nRUN python -m compileall /app\n');
  const planJson = () => {
    const result = run('plan', '--context', context, '--platform', 'linux/amd64', '--json');
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout);
  };

  const first = planJson();
  assert.equal(first.cachedSteps, 0);
  assert.deepEqual(first.steps.map((s) => s.status), ['miss', 'pending', 'pending']);

  const layers = [];
  for (let plan = first; plan.steps.some((s) => s.status === 'miss'); plan = planJson()) {
    const miss = plan.steps.find((s) => s.status === 'miss');
    const staging = join(dir, `layer${layers.length}`);
    mkdirSync(staging);
    writeFileSync(join(staging, 'out.txt'), `output of ${miss.key}\n`);
    const tar = `${staging}.tar.gz`;
    assert.equal(spawnSync('tar', ['-C', staging, '-czf', tar, 'out.txt']).status, 0);
    const pushed = run('push', '--key', miss.key, '--layer', tar, '--json');
    assert.equal(pushed.status, 0, pushed.stderr);
    const descriptor = JSON.parse(pushed.stdout);
    assert.equal(descriptor.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.notEqual(descriptor.digest, descriptor.diffId);
    layers.push({ key: miss.key, tar });
  }
  assert.equal(layers.length, 2, 'COPY and RUN make layers; ENV does not');

  const again = planJson();
  assert.equal(again.cachedSteps, 3);
  assert.deepEqual(again.steps.map((s) => s.status), ['hit', 'hit', 'hit']);

  const output = join(dir, 'pulled.tar.gz');
  const pulled = run('pull', '--key', layers[1].key, '-o', output);
  assert.equal(pulled.status, 0, pulled.stderr);
  assert.deepEqual(readFileSync(output), readFileSync(layers[1].tar));
});

test('usage mistakes exit 2 and a missing key exits 1', () => {
  assert.equal(run('plan', '--no-such-option').status, 2);
  const missing = run('pull', '--key', 'sha256:' + '0'.repeat(64), '-o', join(tmpdir(), 'never-written'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /is not cached/);
});
