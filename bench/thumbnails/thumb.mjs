// node thumb.mjs serve                 : reads lines "thumb|step FILE" on stdin, runs that once and
//                                         answers one line: wall and CPU seconds it took (so the Python
//                                         side can interleave rounds with its own, under the same load)
// node thumb.mjs memory thumb|step FILE WARM_FILE : warmed up on WARM_FILE (a small image of the
//                                         same format), the peak resident memory added by the first run
//                                         on FILE and by a repeat run, in bytes, as JSON
// Run with --expose-gc: garbage is collected before each measured or timed run, as the Python side does.
//
// thumb: sharp(buf).rotate().resize(300, 300, {fit: "cover"}).jpeg({quality: 85}), as the issue
//        states the reference (transparent areas on white, like ours).
// step:  the same three outputs as our upload step (chalicelib.images.process_upload), made the
//        way sharp would: header check (metadata), the original re-encoded upright in its own format
//        without metadata (sharp cannot strip losslessly: JPEG q95, PNG, WebP lossless when the upload
//        was), the thumbnail, and the display copy (1024 px inside, WebP q82).
// One thread: sharp.concurrency(1) and UV_THREADPOOL_SIZE=1 (set by the caller), like one Lambda vCPU;
// libvips still runs a pipeline on several threads, so the caller also pins the process to one CPU.
import { readFileSync, writeFileSync } from "node:fs";
import sharp from "sharp";

sharp.concurrency(1);
sharp.cache(false);

async function thumb(input) {
  return sharp(input).rotate().resize(300, 300, { fit: "cover", position: "centre" })
    .flatten({ background: "#ffffff" }).jpeg({ quality: 85 }).toBuffer();
}

async function step(input) {
  const meta = await sharp(input, { limitInputPixels: 40_000_000 }).metadata();
  if (meta.pages > 1) throw new Error("animated");
  let original = sharp(input).rotate();
  if (meta.format === "jpeg") original = original.jpeg({ quality: 95 });
  else if (meta.format === "png") original = original.png();
  else original = original.webp(meta.isLossless ? { lossless: true } : { quality: 95 });
  const outputs = [await original.toBuffer(), await thumb(input)];
  outputs.push(await sharp(input).rotate().resize(1024, 1024, { fit: "inside", withoutEnlargement: true })
    .webp({ quality: 82 }).toBuffer());
  return outputs;
}

const STEPS = { thumb, step };

function rss(field) {
  const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith(field));
  return Number(line.split(/\s+/)[1]) * 1024;
}

const [command, ...args] = process.argv.slice(2);
if (command === "memory") {
  const [kind, file, warm] = args;
  // Warm the library (code pages, thread pool) on a small image so only this file's work is counted.
  await STEPS[kind](readFileSync(warm));
  const input = readFileSync(file);
  const peaks = [];
  for (let i = 0; i < 2; i++) {
    global.gc();
    const before = rss("VmRSS:");
    writeFileSync("/proc/self/clear_refs", "5"); // reset the peak (VmHWM) to the current RSS
    await STEPS[kind](input);
    peaks.push(rss("VmHWM:") - before);
  }
  console.log(JSON.stringify({ peak: peaks[0], repeat: peaks[1] }));
} else if (command === "serve") {
  const { createInterface } = await import("node:readline");
  const inputs = new Map();
  for await (const line of createInterface({ input: process.stdin })) {
    const [kind, file] = line.split(" ");
    if (!inputs.has(file)) inputs.set(file, readFileSync(file));
    global.gc();
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await STEPS[kind](inputs.get(file));
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(c0);
    process.stdout.write(`${wall} ${(cpu.user + cpu.system) / 1e6}\n`);
  }
}
