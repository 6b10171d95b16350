// Two RTCPeerConnections with iceTransportPolicy "relay": the only candidates are relayed
// addresses on the TURN server under test, so the data channel between them must go through it.
// The test serves /config.json ({url, username, credential, messages, timeout_ms}) and reads the
// JSON this page POSTs to /result; progress lines go to /log. The variant with {api, api_key, user,
// only} instead of url/username/credential fetches its iceServers from the relay's token service
// (POST api with the Bearer key, cross-origin: CORS) and keeps the urls starting with `only`.
'use strict';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function log(line) {
  document.getElementById('log').textContent += line + '\n';
  fetch('/log', { method: 'POST', body: line }).catch(() => {});
}

function withTimeout(promise, ms, what) {
  return Promise.race([
    promise,
    sleep(ms).then(() => { throw new Error('timeout: ' + what); }),
  ]);
}

// POSTs `body` as JSON, retrying for a few seconds if the test's server is not reachable.
async function post(path, body) {
  for (let i = 0; i < 20; i++) {
    try {
      const r = await fetch(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (r.ok) return;
    } catch (e) {
      // retry
    }
    await sleep(250);
  }
}

// The candidate pair ICE selected, with the types of both ends (RFC 8839 "host", "srflx",
// "prflx", "relay").
async function selectedPair(pc) {
  const stats = await pc.getStats();
  let pairId = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  if (!pairId) {
    stats.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pairId = s.id;
    });
  }
  const pair = pairId && stats.get(pairId);
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return {
    local: local && local.candidateType,
    remote: remote && remote.candidateType,
    local_address: local && local.address + ':' + local.port,
    remote_address: remote && remote.address + ':' + remote.port,
    relay_protocol: local && local.relayProtocol,
    bytes_sent: pair.bytesSent,
    bytes_received: pair.bytesReceived,
  };
}

// The iceServers of /v1/relay-configuration for cfg.user, only the urls starting with cfg.only.
async function fetchIceServers(cfg, result) {
  const r = await fetch(cfg.api, {
    method: 'POST',
    headers: { 'Authorization': 'Bearer ' + cfg.api_key, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: cfg.user, ttl: 600 }),
  });
  result.api_status = r.status;
  if (!r.ok) throw new Error('relay configuration: HTTP ' + r.status + ' ' + (await r.text()));
  const body = await r.json();
  const servers = body.iceServers
    .map((s) => Object.assign({}, s, { urls: [].concat(s.urls).filter((u) => u.startsWith(cfg.only)) }))
    .filter((s) => s.urls.length > 0);
  result.ice_servers = servers.map((s) => s.urls);
  log('iceServers from ' + cfg.api + ': ' + JSON.stringify(result.ice_servers));
  return servers;
}

async function run(result) {
  const cfg = await (await fetch('/config.json')).json();
  const iceServers = cfg.api
    ? await fetchIceServers(cfg, result)
    : [{ urls: cfg.url, username: cfg.username, credential: cfg.credential }];
  const config = { iceServers, iceTransportPolicy: 'relay' };
  const a = new RTCPeerConnection(config);
  const b = new RTCPeerConnection(config);
  const peers = { a, b };
  let failEarly;
  const failed = new Promise((_, reject) => { failEarly = reject; });
  for (const [name, pc, other] of [['a', a, b], ['b', b, a]]) {
    pc.onicecandidate = (e) => {
      if (!e.candidate || !e.candidate.candidate) return;
      result.candidates[name].push(e.candidate.candidate);
      other.addIceCandidate(e.candidate).catch((err) => result.errors.push(name + ' addIceCandidate: ' + err));
    };
    pc.onicecandidateerror = (e) => {
      result.errors.push(name + ' icecandidateerror ' + e.errorCode + ' ' + e.errorText + ' ' + e.url);
    };
    pc.oniceconnectionstatechange = () => {
      log(name + ' ice ' + pc.iceConnectionState);
      if (pc.iceConnectionState === 'failed') failEarly(new Error(name + ': ICE failed'));
    };
    pc.onicegatheringstatechange = () => {
      log(name + ' gathering ' + pc.iceGatheringState);
      const relayed = result.candidates[name].some((c) => / typ relay /.test(c + ' '));
      if (pc.iceGatheringState === 'complete' && !relayed) failEarly(new Error(name + ': no relay candidate'));
    };
  }
  failed.catch(() => {});

  const dc = a.createDataChannel('echo');
  b.ondatachannel = (e) => {
    const channel = e.channel;
    channel.onmessage = (m) => channel.send(m.data);
  };
  const opened = new Promise((resolve) => { dc.onopen = resolve; });

  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  await withTimeout(Promise.race([opened, failed]), cfg.timeout_ms, 'data channel open');
  log('data channel open');

  const echoes = [];
  const allBack = new Promise((resolve) => {
    dc.onmessage = (m) => {
      echoes.push(m.data);
      if (echoes.length === cfg.messages) resolve();
    };
  });
  for (let i = 0; i < cfg.messages; i++) {
    dc.send('message ' + i);
    result.sent++;
  }
  await withTimeout(Promise.race([allBack, failed]), cfg.timeout_ms, 'echoes');
  // A reliable, ordered channel: every echo in order.
  result.echoed = echoes.filter((m, i) => m === 'message ' + i).length;
  for (const name of ['a', 'b']) result.pairs[name] = await selectedPair(peers[name]);
  result.ok = true;
  a.close();
  b.close();
}

const result = { ok: false, error: null, sent: 0, echoed: 0, candidates: { a: [], b: [] }, pairs: {}, errors: [] };
run(result)
  .catch((e) => { result.error = String(e); })
  .finally(() => post('/result', result));
