// End-to-end round trip with an independent gRPC client: Node's @grpc/grpc-js, loading the
// .proto files at run time. It shares no code with the server, so it checks the wire contract
// as any other tool would see it. Needs CACHESERVICE_ADDR (host:port of a running server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(new URL('../../tools/package.json', import.meta.url));
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const address = process.env.CACHESERVICE_ADDR;
if (!address) throw new Error('CACHESERVICE_ADDR is not set: start the server first (scripts/test.sh does, with scripts/server.sh)');

const protoRoot = fileURLToPath(new URL('../../protos', import.meta.url));
const definition = protoLoader.loadSync('cacheservice/v1/layer_cache.proto', {
  includeDirs: [protoRoot], keepCase: true, longs: Number, enums: String, defaults: true,
});
const { LayerCache } = grpc.loadPackageDefinition(definition).cacheservice.v1;
const client = new LayerCache(address, grpc.credentials.createInsecure());

const unary = (method, request) => new Promise((resolve, reject) =>
  client[method](request, { deadline: Date.now() + 30_000 }, (error, response) => (error ? reject(error) : resolve(response))));
const digestOf = (bytes) => 'sha256:' + createHash('sha256').update(bytes).digest('hex');
const namespace = `e2e/run-${Date.now()}`;
const platform = 'linux/amd64';
const base = digestOf(Buffer.from('e2e base image'));

function upload(bytes, declared = digestOf(bytes)) {
  return new Promise((resolve, reject) => {
    const call = client.UploadLayer({ deadline: Date.now() + 60_000 }, (error, response) => (error ? reject(error) : resolve(response)));
    call.write({ header: { namespace, digest: declared, size: bytes.length, media_type: 'application/vnd.oci.image.layer.v1.tar' } });
    for (let offset = 0; offset < bytes.length; offset += 256 * 1024) call.write({ chunk: bytes.subarray(offset, offset + 256 * 1024) });
    call.end();
  });
}

function download(digest, offset) {
  return new Promise((resolve, reject) => {
    const parts = [];
    const call = client.DownloadLayer({ namespace, digest, offset }, { deadline: Date.now() + 60_000 });
    call.on('data', (message) => parts.push(message.chunk));
    call.on('error', reject);
    call.on('end', () => resolve(Buffer.concat(parts)));
  });
}

test('a 3 MB layer makes the whole round trip through an independent client', async () => {
  const layerBytes = randomBytes(3 * 1024 * 1024);
  const layer = {
    digest: digestOf(layerBytes), diff_id: digestOf(Buffer.concat([layerBytes, Buffer.from('diff')])),
    size: layerBytes.length, media_type: 'application/vnd.oci.image.layer.v1.tar',
  };
  const step = { instruction: 'RUN make', args: [{ name: 'VERSION', value: '1' }], sources_digest: '' };

  const uploaded = await upload(layerBytes);
  assert.equal(uploaded.already_existed, false);
  assert.equal(uploaded.layer.digest, layer.digest);

  const { key } = await unary('ComputeKey', { parent_state: base, platform, step });
  assert.match(key, /^sha256:[0-9a-f]{64}$/);
  const committed = await unary('Commit', { namespace, key, layer });
  assert.equal(committed.created, true);

  const lookup = await unary('Lookup', { namespace, key, fallback_namespaces: [] });
  assert.equal(lookup.hit, true);
  assert.deepEqual(lookup.layer, layer);

  const chain = await unary('ResolveChain', {
    namespace, base_state: base, platform, steps: [step, { instruction: 'RUN make test', args: [], sources_digest: '' }],
  });
  assert.equal(chain.cached_steps, 1);
  assert.deepEqual(chain.steps.map((s) => s.status), ['STEP_STATUS_HIT', 'STEP_STATUS_MISS']);
  assert.equal(chain.steps[0].key, key);

  assert.ok((await download(layer.digest, 0)).equals(layerBytes), 'download from offset 0 differs');
  const middle = 1_500_001;
  assert.ok((await download(layer.digest, middle)).equals(layerBytes.subarray(middle)), 'download from the middle differs');

  const stats = await unary('GetStats', { namespace });
  assert.equal(stats.hits, 2);
  assert.equal(stats.lookups, 3);
  assert.equal(stats.entries, 1);
  assert.equal(stats.stored_bytes, layerBytes.length);
});

test('a wrong digest is refused with INVALID_ARGUMENT and leaves nothing', async () => {
  const bytes = randomBytes(100_000);
  const wrong = digestOf(Buffer.from('something else'));
  await assert.rejects(upload(bytes, wrong), (error) => error.code === grpc.status.INVALID_ARGUMENT && /digest/.test(error.details));
  const stat = await unary('StatLayers', { namespace, digests: [wrong, digestOf(bytes)] });
  assert.deepEqual(stat.present, []);
});

test('a malformed namespace is refused with INVALID_ARGUMENT naming the field', async () => {
  await assert.rejects(unary('Lookup', { namespace: 'Not Valid', key: base }),
    (error) => error.code === grpc.status.INVALID_ARGUMENT && error.details.startsWith('namespace:'));
});
