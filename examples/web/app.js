// The example page: token from our backend → relay configuration from switchback → a data channel
// between two RTCPeerConnections with iceTransportPolicy "relay", so every byte goes through the
// relay. The outcome is shown on the page and POSTed to the backend's /result (the test reads it).
'use strict';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const MESSAGES = 10;
const STEP_TIMEOUT_MS = 20000;

function log(line) {
  document.getElementById('log').textContent += line + '\n';
}

function withTimeout(promise, ms, what) {
  return Promise.race([promise, sleep(ms).then(() => { throw new Error('timeout: ' + what); })]);
}

// 1. Our backend (same origin) mints the access token; the page never sees a secret.
async function accessToken() {
  const r = await fetch('/token', { method: 'POST' });
  if (!r.ok) throw new Error('backend /token: HTTP ' + r.status);
  return r.json(); // { token, api }
}

// 2. switchback's token service (another origin: CORS) turns it into TURN credentials.
async function relayConfiguration(api, token) {
  const r = await fetch(api + '/v1/relay-configuration', {
    method: 'POST',
    headers: { 'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: JSON.stringify({ ttl: 600 }),
  });
  const body = await r.json();
  if (!r.ok) throw new Error('relay-configuration: HTTP ' + r.status + ' ' + JSON.stringify(body.error));
  return body; // { iceServers, expiresOn }
}

async function selectedPairTypes(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return { local: local && local.candidateType, remote: remote && remote.candidateType };
}

// 3. Two peers in this page, relay candidates only, a data channel echo.
async function dataChannel(iceServers, result) {
  const config = { iceServers, iceTransportPolicy: 'relay' };
  const a = new RTCPeerConnection(config);
  const b = new RTCPeerConnection(config);
  let fail;
  const failed = new Promise((_, reject) => { fail = reject; });
  failed.catch(() => {});
  for (const [name, pc, other] of [['a', a, b], ['b', b, a]]) {
    pc.onicecandidate = (e) => {
      if (e.candidate && e.candidate.candidate) other.addIceCandidate(e.candidate).catch(() => {});
    };
    pc.oniceconnectionstatechange = () => {
      log(name + ' ICE ' + pc.iceConnectionState);
      if (pc.iceConnectionState === 'failed') fail(new Error(name + ': ICE failed'));
    };
  }
  const dc = a.createDataChannel('echo');
  b.ondatachannel = (e) => { e.channel.onmessage = (m) => e.channel.send(m.data); };
  const opened = new Promise((resolve) => { dc.onopen = resolve; });
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  await withTimeout(Promise.race([opened, failed]), STEP_TIMEOUT_MS, 'data channel open');
  log('data channel open');
  const echoes = [];
  const allBack = new Promise((resolve) => {
    dc.onmessage = (m) => { echoes.push(m.data); if (echoes.length === MESSAGES) resolve(); };
  });
  for (let i = 0; i < MESSAGES; i++) dc.send('hello ' + i);
  await withTimeout(Promise.race([allBack, failed]), STEP_TIMEOUT_MS, 'echoes');
  result.echoed = echoes.filter((m, i) => m === 'hello ' + i).length;
  result.pairs = { a: await selectedPairTypes(a), b: await selectedPairTypes(b) };
  a.close();
  b.close();
}

async function main() {
  const result = { ok: false, error: null, echoed: 0, expiresOn: null, urls: [], pairs: null };
  const status = document.getElementById('status');
  try {
    const { token, api } = await accessToken();
    log('access token from the backend');
    const cfg = await relayConfiguration(api, token);
    result.expiresOn = cfg.expiresOn;
    result.urls = cfg.iceServers.flatMap((s) => s.urls);
    log('relay configuration, valid until ' + cfg.expiresOn + ': ' + result.urls.join(' '));
    await dataChannel(cfg.iceServers, result);
    result.ok = result.echoed === MESSAGES;
  } catch (e) {
    result.error = String(e);
    log('error: ' + e);
  }
  status.textContent = result.ok ? 'relayed ' + result.echoed + ' messages' : 'failed';
  for (let i = 0; i < 20; i++) {
    try {
      const r = await fetch('/result', { method: 'POST', body: JSON.stringify(result) });
      if (r.ok) break;
    } catch (e) { /* retry */ }
    await sleep(250);
  }
}

main();
