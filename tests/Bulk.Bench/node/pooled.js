// The peer row of ./bulk bench: what a user would write with nodemailer's pooled transport. A loop over the
// recipients with a per-mail subject, every sendMail handed to the pool at once, the pool's connections reused.
// Usage: node pooled.js PORT CONNECTIONS COUNT WARMUP BODYBYTES; prints one JSON line.
'use strict';
const nodemailer = require('nodemailer');

const [port, connections, count, warmup, bodyBytes] = process.argv.slice(2).map(Number);
// The same text as the Bulk campaign's template (tests/Bulk.Bench/Support.cs, Campaign.Build).
const filler = 'Bulk sends one message to thousands of recipients. '.repeat(Math.max(0, Math.floor(bodyBytes / 52)));

const transport = nodemailer.createTransport({
  pool: true,
  host: '127.0.0.1',
  port,
  secure: false,
  ignoreTLS: true,
  maxConnections: connections,
  maxMessages: Infinity,
});

function sendAll(from, to) {
  const sent = [];
  for (let i = from; i < to; i++) {
    sent.push(transport.sendMail({
      from: 'Bench <bench@example.com>',
      to: `r${i}@example.org`,
      subject: `Hello Reader ${i}`,
      text: `Hi Reader ${i}, you are reader ${i}.\n${filler}`,
    }));
  }
  return Promise.all(sent);
}

(async () => {
  await sendAll(0, warmup); // the connections open and the JIT warms, as the other rows do
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  await sendAll(warmup, warmup + count);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  transport.close();
  console.log(JSON.stringify({ messages: count, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
