// The attacker as its own process, for the flood tests and bench/flood.ts: receives
// frames over IPC, then publishes them round-robin as fast as one NATS connection
// takes them (or at `rate` frames/s), for `durationMs`. Plain JS: no loader needed.
import { connect } from '@nats-io/transport-node';

process.once('message', async ({ url, frames, durationMs, rate }) => {
  const nc = await connect({ servers: url, name: 'flood' });
  process.send({ ready: true });
  const start = Date.now();
  const end = start + durationMs;
  const batch = 256;
  let sent = 0;
  while (Date.now() < end) {
    for (let i = 0; i < batch; i++) {
      const [subject, bytes] = frames[(sent + i) % frames.length];
      nc.publish(subject, bytes);
    }
    sent += batch;
    await nc.flush();
    if (rate > 0) {
      const ahead = sent / rate - (Date.now() - start) / 1000;
      if (ahead > 0) await new Promise((resolve) => setTimeout(resolve, ahead * 1000));
    }
  }
  await nc.drain();
  process.send({ done: true, sent, rate: sent / ((Date.now() - start) / 1000) });
  process.disconnect();
});
