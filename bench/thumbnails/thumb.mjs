// node thumb.mjs ROUNDS FILE... : make a 300x300 centre-cropped JPEG thumbnail of each file ROUNDS
// times with sharp (libvips), as Pillow does in chalicelib/images.make_thumbnail; prints JSON
// {file: [seconds per round]}. One thread: sharp.concurrency(1), like one Lambda vCPU.
import { readFileSync } from "node:fs";
import sharp from "sharp";

sharp.concurrency(1);
sharp.cache(false);
const [rounds, ...files] = process.argv.slice(2);
const out = {};
for (const file of files) {
  const input = readFileSync(file);
  out[file] = [];
  for (let i = 0; i < Number(rounds); i++) {
    const t0 = process.hrtime.bigint();
    await sharp(input).rotate().resize(300, 300, { fit: "cover", position: "centre" })
      .flatten({ background: "#ffffff" }).jpeg({ quality: 85 }).toBuffer();
    out[file].push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
}
console.log(JSON.stringify(out));
